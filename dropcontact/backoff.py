"""Backoff schedules as immutable values with pure arithmetic.

``PollSchedule`` says when to look again for a batch's results; ``RetrySchedule``
says when to try again after a real error (5xx, 524, timeouts). Neither
sleeps: the caller turns the delay into a Celery countdown. Randomness comes
from the ``random.Random`` passed in, so tests are exact.

Why these poll defaults: the API takes about 10 to 60 s per batch, up to 3
minutes. The documented approach, a GET every 30 s, is hard to beat with
polling alone: for that distribution it sits almost on the best trade-off
curve between GETs per batch and delay from "ready" to "fetched"
(``bench/polling.py --simulate`` prints the curve). Looking first at 40 s (the
cap clips the jitter, so between 32 and 40 s) splits the 10-60 s body so that
the second look, about 20 s later, finds nearly every batch ready; the gaps
then grow x1.2 up to 40 s for the slow tail. With 90% of batches in 10-60 s
and 10% in 60-180 s that is about 0.93x the GETs and 0.93x the mean delay of
polling every 30 s. The first defaults (10 s, then 5 s x1.5, capped at 60 s)
cut the delay to 0.71x but cost 2.4x the GETs, which at the API's 60
requests/s halves the batches a key can push through. Only webhooks remove
both the GETs and the delay; with them, polling is the safety net.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PollSchedule",
    "RetrySchedule",
    "DEFAULT_POLL_FIRST_S",
    "DEFAULT_POLL_BASE_S",
    "DEFAULT_POLL_FACTOR",
    "DEFAULT_POLL_CAP_S",
    "DEFAULT_POLL_MAX_AGE_S",
    "early_delay_s",
    "processing_estimate_s",
    "size_class",
]

# Jitter spreads polls of batches submitted together, so they don't all land in one second.
DEFAULT_JITTER = 0.2
# The first look, between 32 and 40 s after submit (the cap clips the jitter; see above)...
DEFAULT_POLL_FIRST_S = 40.0
# ...then the delay between polls grows from this base...
DEFAULT_POLL_BASE_S = 20.0
# ...by this factor per poll, for the slow tail...
DEFAULT_POLL_FACTOR = 1.2
# ...and never waits more than this between two polls.
DEFAULT_POLL_CAP_S = 40.0
# After this age a batch is fetched once with forceResults=true (the docs' worst case is 3 min).
DEFAULT_POLL_MAX_AGE_S = 900.0


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """When to poll a submitted batch.

    Args:
        first_s: delay from submit to the first poll.
        base_s: delay after the first unsuccessful poll; grows by ``factor`` each time.
        factor: growth of the delay between two polls.
        cap_s: the longest delay between two polls.
        max_age_s: past this age (from submit), ask once with ``forceResults=true``.
        jitter: the delay is multiplied by a factor drawn in ``[1 - jitter, 1 + jitter]``.
    """

    first_s: float = DEFAULT_POLL_FIRST_S
    base_s: float = DEFAULT_POLL_BASE_S
    factor: float = DEFAULT_POLL_FACTOR
    cap_s: float = DEFAULT_POLL_CAP_S
    max_age_s: float = DEFAULT_POLL_MAX_AGE_S
    jitter: float = DEFAULT_JITTER

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay before poll number ``attempt + 1`` (``attempt`` 0 is the first poll after submit).

        Args:
            attempt: how many polls already happened.
            rng: source of jitter.

        Returns:
            Seconds to wait, never above ``cap_s`` (nor below zero).
        """
        raw = self.first_s if attempt <= 0 else self.base_s * self.factor ** (attempt - 1)
        bounded = min(raw, self.cap_s)
        return max(0.0, min(self.cap_s, bounded * rng.uniform(1 - self.jitter, 1 + self.jitter)))

    def is_past_max_age(self, age_s: float) -> bool:
        """Tell whether a batch this old should be fetched with ``forceResults=true``."""
        return age_s >= self.max_age_s

    def next_delay_s(self, attempt: int, age_s: float, rng: random.Random) -> float:
        """The delay to the next poll, shortened so that the forced fetch happens at ``max_age_s``.

        Args:
            attempt: polls already made.
            age_s: seconds since the batch was submitted.
            rng: source of jitter.
        """
        delay = self.delay_s(attempt, rng)
        remaining = self.max_age_s - age_s
        return max(0.0, min(delay, remaining)) if remaining > 0 else 0.0


# Early polls (when the request budget has room) aim at these ages until processing times are known...
COLD_TARGETS_S: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0)
# ...then at these quantiles of the processing times seen for batches of the same size class.
TARGET_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9, 0.97)
# Processing times needed before the quantiles replace the cold targets.
MIN_OBSERVATIONS = 8
# Two early polls of one batch are at least this far apart.
EARLY_MIN_GAP_S = 0.5
# Batch sizes that take about as long as each other (the API's work grows with the records).
_SIZE_CLASSES: tuple[tuple[int, str], ...] = ((10, "s"), (100, "m"))


def size_class(count: int) -> str:
    """The class of a batch of ``count`` records whose processing times are learnt together."""
    return next((name for limit, name in _SIZE_CLASSES if count <= limit), "l")


def processing_estimate_s(last_look_age_s: float, ready_age_s: float) -> float:
    """What one batch says of the API's processing time: between its last unready look and its ready one.

    Args:
        last_look_age_s: the batch's age at its last "not ready" answer (0 when the first look was ready).
        ready_age_s: its age at the answer that had the results.
    """
    if last_look_age_s <= 0 or last_look_age_s >= ready_age_s:
        return ready_age_s
    return (last_look_age_s + ready_age_s) / 2


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def early_delay_s(age_s: float, observed_s: Sequence[float]) -> float | None:
    """The delay to an early poll of a batch this old, or None when no target is left ahead of it.

    Args:
        age_s: seconds since the batch was submitted.
        observed_s: processing times the API took for batches of its size class (any order).
    """
    if len(observed_s) >= MIN_OBSERVATIONS:
        ordered = sorted(observed_s)
        targets: Sequence[float] = [_quantile(ordered, q) for q in TARGET_QUANTILES]
    else:
        targets = COLD_TARGETS_S
    for target in targets:
        if target >= age_s + EARLY_MIN_GAP_S:
            return target - age_s
    return None


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """When to try again after a real error, and when to give up.

    Args:
        base_s: delay after the first error, doubled each time.
        cap_s: the longest delay.
        max_retries: errors allowed before the work fails for good.
        jitter: as in ``PollSchedule``.
    """

    base_s: float = 2.0
    cap_s: float = 60.0
    max_retries: int = 8
    jitter: float = DEFAULT_JITTER

    def delay_s(self, errors: int, rng: random.Random) -> float:
        """Delay after the ``errors``-th consecutive error (1 for the first)."""
        raw = min(self.cap_s, self.base_s * 2.0 ** max(0, errors - 1))
        return max(0.0, min(self.cap_s, raw * rng.uniform(1 - self.jitter, 1 + self.jitter)))

    def is_exhausted(self, errors: int) -> bool:
        """Tell whether ``errors`` consecutive errors mean giving up."""
        return errors > self.max_retries
