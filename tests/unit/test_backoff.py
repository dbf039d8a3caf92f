"""Backoff schedules: pure arithmetic, no sleeping."""

from __future__ import annotations

import random

import pytest

from dropq.dropcontact.backoff import (
    MIN_OBSERVATIONS,
    PollSchedule,
    RetrySchedule,
    early_delay_s,
    processing_estimate_s,
    size_class,
)

NO_JITTER = PollSchedule(first_s=10, base_s=5, factor=1.5, cap_s=60, max_age_s=900, jitter=0)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 10.0), (1, 5.0), (2, 7.5), (3, 11.25), (4, 16.875), (8, 60.0), (50, 60.0)],
)
def test_poll_delays_grow_geometrically_up_to_the_cap(attempt: int, expected: float) -> None:
    """The first poll waits first_s, then base_s grows by factor, capped."""
    assert NO_JITTER.delay_s(attempt, random.Random(1)) == pytest.approx(expected)


def test_jitter_stays_within_bounds_and_under_the_cap() -> None:
    """Jittered delays stay within ±jitter of the raw delay and never exceed the cap."""
    schedule = PollSchedule(jitter=0.2)
    rng = random.Random(7)
    for attempt in range(30):
        raw = (
            schedule.first_s
            if attempt == 0
            else min(schedule.cap_s, schedule.base_s * schedule.factor ** (attempt - 1))
        )
        delay = schedule.delay_s(attempt, rng)
        assert raw * 0.8 - 1e-9 <= delay <= min(schedule.cap_s, raw * 1.2) + 1e-9


def test_next_delay_lands_the_forced_fetch_on_max_age() -> None:
    """Close to max_age, the next poll is scheduled exactly at max_age."""
    assert NO_JITTER.next_delay_s(attempt=20, age_s=880, rng=random.Random(0)) == pytest.approx(20)
    assert NO_JITTER.next_delay_s(attempt=20, age_s=950, rng=random.Random(0)) == 0
    assert NO_JITTER.is_past_max_age(900) and not NO_JITTER.is_past_max_age(899.9)


@pytest.mark.parametrize(("errors", "expected"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (20, 60.0)])
def test_retry_delays_double_up_to_the_cap(errors: int, expected: float) -> None:
    """Error retries back off exponentially, capped."""
    assert RetrySchedule(jitter=0).delay_s(errors, random.Random(0)) == expected


def test_retries_are_exhausted_after_max_retries() -> None:
    """The error after max_retries gives up."""
    schedule = RetrySchedule(max_retries=3)
    assert not schedule.is_exhausted(3)
    assert schedule.is_exhausted(4)


def test_early_polls_aim_at_the_cold_targets_until_enough_times_are_known() -> None:
    """No history: 1, 2, 3, 5 s...; a batch 2.8 s old is looked at again at 5 s, not 3.0 (0.5 s apart at least)."""
    assert early_delay_s(0.0, []) == 1.0
    assert early_delay_s(1.0, [2.0] * (MIN_OBSERVATIONS - 1)) == 1.0
    assert early_delay_s(2.8, []) == pytest.approx(2.2)
    assert early_delay_s(40.0, []) is None


def test_early_polls_aim_at_the_quantiles_of_the_times_seen() -> None:
    """With history, the first early look is at its 10th percentile, then the next quantile ahead."""
    seen = [float(s) for s in range(10, 61)]  # 10..60 s, as the docs describe the API
    assert early_delay_s(0.0, seen) == pytest.approx(15.0)
    assert early_delay_s(15.0, seen) == pytest.approx(22.5 - 15.0)
    assert early_delay_s(59.0, seen) is None


def test_a_processing_estimate_sits_between_the_last_unready_look_and_the_ready_one() -> None:
    """Ready at 3 s after an unready look at 2 s: about 2.5 s; ready at the first look: that look's age."""
    assert processing_estimate_s(2.0, 3.0) == 2.5
    assert processing_estimate_s(0.0, 1.2) == 1.2


@pytest.mark.parametrize(("count", "expected"), [(1, "s"), (10, "s"), (11, "m"), (100, "m"), (101, "l"), (250, "l")])
def test_batches_are_learnt_in_three_size_classes(count: int, expected: str) -> None:
    """A lone contact and a full batch of 250 are not expected to take the same time."""
    assert size_class(count) == expected
