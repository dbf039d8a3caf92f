"""The limiter's arithmetic: values in, values out, no clock, no Redis, no logging.

Every function here has a twin in ``acquire.lua`` / ``feedback.lua``; the
in-memory store calls these, the Redis store runs the scripts, and one test
table checks that both give the same answers. All quantities are integers
(microseconds for the bucket, milliseconds for waits, parts per million for
fractions), because Redis truncates the floats a Lua script returns.

The rate is a GCRA (generic cell rate algorithm, the "virtual scheduling"
form): the state is one number, the theoretical arrival time ``tat_us``. A
request is granted when ``max(tat, now) - now <= tolerance``; it then pushes
``tat`` forward by ``cost`` emission intervals. With a tolerance ``tau`` and an
interval ``T``, no window of ``W`` microseconds holds more than
``1 + (W + tau) / T`` granted requests of cost 1.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = [
    "BULK_LANE",
    "BULK_HORIZON_MS",
    "FIRST_LANE",
    "LATE_SEND_MS",
    "LINE_GRACE_MS",
    "LINE_LEAD_MS",
    "NO_LANE",
    "Decision",
    "backlog_ms",
    "LimiterPolicy",
    "PPM",
    "base_interval_us",
    "scaled_interval_us",
    "gcra_step",
    "recovered_factor_ppm",
    "decreased_factor_ppm",
    "full_recovery_ms",
    "next_strikes",
    "cooldown_ms",
    "delay_ms",
    "jitter_ppm",
    "max_requests_in_window",
    "latency_spread_budget_us",
]

PPM = 1_000_000
_US_PER_S = 1_000_000

# Lanes (``acquire.lua``): while a first-lane request waits in line, bulk requests neither reserve nor fill
# gaps; ``NO_LANE`` is the limiter alone.
FIRST_LANE = "first"
BULK_LANE = "bulk"
NO_LANE = ""
LANES = (FIRST_LANE, BULK_LANE)
# A request in line is told to come back this long before its promised slot: its reservation then
# absorbs the lateness of its message (a countdown) and of the requests before it.
LINE_LEAD_MS = 100
# A promise is kept this long past its slot for a request that comes back late; then it is dropped.
LINE_GRACE_MS = 1_000
# How far ahead a bulk request may reserve (``RateLimiter.acquire_waiting``): at most this much of bulk
# work stands before an interactive request, whose horizon is the whole inline wait.
BULK_HORIZON_MS = 150
# A request woken this much later than its reserved slot does not send: its lateness would eat the
# margin's budget for the spread of arrivals (``latency_spread_budget_us``); it takes a new slot.
LATE_SEND_MS = 10

# Issue at 97% of the configured rate: the 3% left absorbs the spread of latencies between
# the limiter's grant and the request's arrival at the server (see max_requests_in_window).
DEFAULT_SAFETY_MARGIN = 0.97
# A grant may use a slot that opened this long ago: a waiter that wakes a few milliseconds late
# (ms rounding, a round trip, the scheduler) then loses no throughput. It spends part of the margin's budget.
DEFAULT_TOLERANCE_US = 5_000
# On a 429 the rate drops to 90% of what it was (multiplicative decrease)... A 429 that gets through our
# own limiter is mostly the spread of arrivals at the server (one request too close to the next), not
# another client on the key: 70% (the first value) cost about 2 s of the full rate per 429, and a 300,000-
# contact backfill used 0.67-0.74 of the limit where 90% gives 0.74-0.82 (bench/backfill.py). Another
# client on the key still gets its share: each 429 episode cuts 10% more, down to the floor.
DEFAULT_DECREASE_PPM = 900_000
# ...never below 10% of the configured rate...
DEFAULT_MIN_FACTOR_PPM = 100_000
# ...and climbs back by 2% of the configured rate per second (from 90% to 100% in 5 s).
DEFAULT_RECOVERY_PPM_PER_S = 20_000
# The first 429 without a server-given wait cools the key down for about 1 s (the docs' advice)...
DEFAULT_BACKOFF_BASE_MS = 1_000
# ...doubling per consecutive 429 up to this cap.
DEFAULT_BACKOFF_CAP_MS = 30_000
# A 429 within this long after the previous cooldown ended counts as consecutive: the cooldown and the
# lower rate did not help, so the next cooldown doubles. As long as the rate takes to recover (5 s), no
# longer: at 30 s (the first value) sporadic 429s 15 s apart each doubled the cooldown, up to 30 s of a
# stopped fleet per 429 in a long backfill.
DEFAULT_STRIKE_RESET_MS = 5_000
# A server-given wait longer than this is clipped (a broken header must not stop a fleet for hours).
DEFAULT_MAX_SERVER_WAIT_MS = 600_000


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer: go (now, or after ``delay_ms``: a reserved slot), or come back in ``retry_after_ms``.

    Args:
        allowed: the request may be sent (a token was taken).
        retry_after_ms: when not allowed, how long until asking again is worth it; 0 when allowed.
        delay_ms: when allowed, how long to wait before sending (a slot reserved ahead); 0 = now.
    """

    allowed: bool
    retry_after_ms: int
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class LimiterPolicy:
    """The tunables of one limiter, as a value; the defaults are the documented constants.

    Args:
        rate_per_s: the configured limit N (``DROPQ_RATE_LIMIT``): requests per second, all workers together.
        safety_margin: the fraction of N actually issued.
        tolerance_us: how late a request may be and still use its slot (microseconds).
        decrease_ppm: the factor applied to the adaptive rate on a 429.
        min_factor_ppm: the adaptive rate's floor, as a fraction of N.
        recovery_ppm_per_s: how fast the adaptive rate climbs back, as a fraction of N per second.
        backoff_base_ms: the first cooldown after a 429 without a server-given wait.
        backoff_cap_ms: the longest such cooldown.
        strike_reset_ms: a 429 this long after the last cooldown ended starts the count again.
        max_server_wait_ms: the longest server-given wait honoured.
    """

    rate_per_s: float
    safety_margin: float = DEFAULT_SAFETY_MARGIN
    tolerance_us: int = DEFAULT_TOLERANCE_US
    decrease_ppm: int = DEFAULT_DECREASE_PPM
    min_factor_ppm: int = DEFAULT_MIN_FACTOR_PPM
    recovery_ppm_per_s: int = DEFAULT_RECOVERY_PPM_PER_S
    backoff_base_ms: int = DEFAULT_BACKOFF_BASE_MS
    backoff_cap_ms: int = DEFAULT_BACKOFF_CAP_MS
    strike_reset_ms: int = DEFAULT_STRIKE_RESET_MS
    max_server_wait_ms: int = DEFAULT_MAX_SERVER_WAIT_MS

    def __post_init__(self) -> None:
        if not (self.rate_per_s > 0 and math.isfinite(self.rate_per_s)):
            raise ValueError(f"rate_per_s must be a positive number, got {self.rate_per_s!r}")
        if not 0 < self.safety_margin <= 1:
            raise ValueError(f"safety_margin must be in (0, 1], got {self.safety_margin!r}")
        if not 0 <= self.tolerance_us < _US_PER_S:
            raise ValueError(f"tolerance_us must be in [0, {_US_PER_S}), got {self.tolerance_us!r}")
        if not 0 < self.min_factor_ppm <= self.decrease_ppm <= PPM:
            raise ValueError(
                f"need 0 < min_factor_ppm <= decrease_ppm <= {PPM}, got {self.min_factor_ppm!r}, {self.decrease_ppm!r}"
            )
        if self.recovery_ppm_per_s <= 0:
            raise ValueError(f"recovery_ppm_per_s must be positive, got {self.recovery_ppm_per_s!r}")
        if not 0 < self.backoff_base_ms <= self.backoff_cap_ms:
            raise ValueError(f"need 0 < backoff_base_ms <= backoff_cap_ms, got {self.backoff_base_ms!r}")

    @property
    def base_interval_us(self) -> int:
        """The emission interval at full adaptive rate, margin applied."""
        return base_interval_us(self.rate_per_s, self.safety_margin)


def base_interval_us(rate_per_s: float, safety_margin: float) -> int:
    """The emission interval for ``rate_per_s * safety_margin``, rounded up (never over-issue)."""
    return math.ceil(_US_PER_S / (rate_per_s * safety_margin))


def scaled_interval_us(base_us: int, factor_ppm: int) -> int:
    """The emission interval when the adaptive rate is ``factor_ppm`` of the full rate, rounded up."""
    return -(-base_us * PPM // factor_ppm)


def backlog_ms(tat_us: int | None, now_us: int) -> int:
    """How far a bucket's theoretical arrival time is ahead of now, in ms (0 for none, or one in the past)."""
    return max(0, (tat_us - now_us) // 1000) if tat_us is not None else 0


def gcra_step(tat_us: int, now_us: int, interval_us: int, tolerance_us: int, cost: int) -> tuple[Decision, int]:
    """One GCRA decision.

    Args:
        tat_us: the stored theoretical arrival time (0 when there is none).
        now_us: the clock.
        interval_us: the emission interval.
        tolerance_us: how far ahead of ``now`` the schedule may be for a grant.
        cost: requests this grant stands for.

    Returns:
        The decision and the new ``tat_us`` (unchanged when refused).
    """
    tat = max(tat_us, now_us)
    allow_at = tat - tolerance_us
    if now_us < allow_at:
        return Decision(False, -(-(allow_at - now_us) // 1000)), tat_us
    return Decision(True, 0), tat + cost * interval_us


def recovered_factor_ppm(factor_ppm: int, since_ms: int, now_ms: int, recovery_ppm_per_s: int) -> int:
    """The adaptive factor ``now``, having climbed linearly since it was set, capped at 1."""
    elapsed_ms = max(0, now_ms - since_ms)
    return min(PPM, factor_ppm + elapsed_ms * recovery_ppm_per_s // 1000)


def decreased_factor_ppm(factor_ppm: int, decrease_ppm: int, min_factor_ppm: int) -> int:
    """The adaptive factor after a 429: multiplied by ``decrease_ppm``, not below the floor."""
    return max(min_factor_ppm, factor_ppm * decrease_ppm // PPM)


def full_recovery_ms(factor_ppm: int, recovery_ppm_per_s: int) -> int:
    """How long until ``factor_ppm`` is back to 1 (the lifetime of its Redis key)."""
    return -(-(PPM - factor_ppm) * 1000 // recovery_ppm_per_s)


def next_strikes(strikes: int, cooldown_until_ms: int, now_ms: int, strike_reset_ms: int) -> int:
    """The count of consecutive 429 episodes once a new one starts at ``now_ms``."""
    if strikes > 0 and now_ms - cooldown_until_ms < strike_reset_ms:
        return strikes + 1
    return 1


def cooldown_ms(strikes: int, jitter: int, base_ms: int, cap_ms: int) -> int:
    """Exponential cooldown with "equal jitter": half fixed, half scaled by ``jitter`` (ppm).

    Args:
        strikes: consecutive 429 episodes, 1 for the first.
        jitter: a uniform draw in ``[0, PPM]``.
        base_ms: the first cooldown's ceiling.
        cap_ms: the longest cooldown.
    """
    ceiling = min(cap_ms, base_ms << min(max(strikes, 1) - 1, 30))
    half = ceiling // 2
    return ceiling - half + half * jitter // PPM


def jitter_ppm(rng: random.Random) -> int:
    """A uniform draw in ``[0, PPM]`` for ``cooldown_ms``."""
    return rng.randint(0, PPM)


def delay_ms(
    strikes: int,
    rng: random.Random,
    base_ms: int = DEFAULT_BACKOFF_BASE_MS,
    cap_ms: int = DEFAULT_BACKOFF_CAP_MS,
) -> int:
    """The cooldown after ``strikes`` consecutive 429s, jittered with ``rng``."""
    return cooldown_ms(strikes, jitter_ppm(rng), base_ms, cap_ms)


def max_requests_in_window(interval_us: int, tolerance_us: int, window_us: int, jitter_us: int = 0) -> int:
    """The most cost-1 grants any window can see, when arrival latencies spread over ``jitter_us``.

    This is the bound the safety margin is chosen against: requests granted over
    ``window + jitter`` can land in one window at the server.
    """
    return 1 + (window_us + jitter_us + tolerance_us) // interval_us


def latency_spread_budget_us(policy: LimiterPolicy) -> int:
    """The spread of grant-to-server latencies under which no 1-second window at the server exceeds N.

    ``1 + (1 s + spread + tolerance) // interval <= N`` holds while
    ``spread < N * interval - 1 s - tolerance``: about ``1 s * (1 / margin - 1) - tolerance``, whatever N
    (26 ms at the default 0.97 margin and 5 ms tolerance).
    """
    return math.floor(policy.rate_per_s) * policy.base_interval_us - _US_PER_S - policy.tolerance_us - 1
