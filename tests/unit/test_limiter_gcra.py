"""The limiter's pure arithmetic: GCRA step, adaptive rate, cooldown backoff, the margin's bound, wait plans."""

from __future__ import annotations

import random

import pytest

from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import PPM, Decision, LimiterPolicy


@pytest.mark.parametrize(
    ("tat_us", "now_us", "cost", "expected", "new_tat_us"),
    [
        (0, 1_000_000, 1, Decision(True, 0), 1_100_000),  # no state: granted, schedule one interval ahead
        (1_100_000, 1_000_000, 1, Decision(False, 50), 1_100_000),  # 100 ms ahead, 50 tolerated: wait 50
        (1_100_000, 1_050_000, 1, Decision(True, 0), 1_200_000),  # exactly at the tolerance: granted
        (1_100_000, 1_049_001, 1, Decision(False, 1), 1_100_000),  # 0.999 ms early rounds up to 1 ms
        (1_100_000, 5_000_000, 3, Decision(True, 0), 5_300_000),  # idle time is not banked
    ],
)
def test_gcra_step_grants_on_schedule_within_the_tolerance(
    tat_us: int, now_us: int, cost: int, expected: Decision, new_tat_us: int
) -> None:
    """A request goes when the schedule is at most the tolerance ahead; a refusal leaves the state unchanged."""
    assert gcra.gcra_step(tat_us, now_us, 100_000, 50_000, cost) == (expected, new_tat_us)


def test_intervals_round_up_so_the_rate_is_never_exceeded() -> None:
    """The emission interval rounds up, and a lowered factor lengthens it proportionally."""
    assert gcra.base_interval_us(3, 1.0) == 333_334
    assert gcra.base_interval_us(50, 0.97) == 20_619
    assert gcra.scaled_interval_us(100_000, 700_000) == 142_858
    assert gcra.scaled_interval_us(100_000, PPM) == 100_000


@pytest.mark.parametrize(
    ("factor", "since_ms", "now_ms", "expected"),
    [
        (700_000, 0, 0, 700_000),
        (700_000, 0, 1_000, 720_000),  # +2% of N per second
        (700_000, 0, 15_000, PPM),  # back to full in 15 s, and capped there
        (700_000, 5_000, 1_000, 700_000),  # a clock behind the stamp does not lower it
    ],
)
def test_adaptive_rate_recovers_linearly_to_full(factor: int, since_ms: int, now_ms: int, expected: int) -> None:
    """Recovery is additive in time and stops at the configured rate."""
    assert gcra.recovered_factor_ppm(factor, since_ms, now_ms, 20_000) == expected


def test_adaptive_rate_decreases_multiplicatively_down_to_a_floor() -> None:
    """Each 429 episode multiplies the factor by 0.7, never below 10%."""
    factor = PPM
    seen = []
    for _ in range(8):
        factor = gcra.decreased_factor_ppm(factor, 700_000, 100_000)
        seen.append(factor)
    assert seen[:3] == [700_000, 490_000, 343_000]
    assert seen[-1] == 100_000
    assert gcra.full_recovery_ms(700_000, 20_000) == 15_000


@pytest.mark.parametrize(
    ("strikes", "jitter", "expected_ms"),
    [
        (1, 0, 500),  # equal jitter: at least half of the 1 s ceiling
        (1, PPM, 1_000),
        (2, PPM // 2, 1_500),
        (3, 0, 2_000),
        (6, PPM, 30_000),  # 32 s is capped at 30 s
        (60, 0, 15_000),  # no overflow for absurd counts
    ],
)
def test_cooldown_doubles_per_consecutive_429_with_jitter_and_a_cap(
    strikes: int, jitter: int, expected_ms: int
) -> None:
    """The cooldown is exponential in the consecutive episodes, jittered in its upper half, capped."""
    assert gcra.cooldown_ms(strikes, jitter, 1_000, 30_000) == expected_ms


def test_delay_ms_draws_its_jitter_from_the_given_rng() -> None:
    """The same seed gives the same delays, all inside the documented bounds."""
    first = [gcra.delay_ms(s, random.Random(7)) for s in range(1, 8)]
    again = [gcra.delay_ms(s, random.Random(7)) for s in range(1, 8)]
    assert first == again
    for strikes, delay in enumerate(first, start=1):
        ceiling = min(30_000, 1_000 * 2 ** (strikes - 1))
        assert ceiling // 2 <= delay <= ceiling


@pytest.mark.parametrize(
    ("strikes", "until_ms", "now_ms", "expected"),
    [
        (0, 0, 10_000, 1),
        (1, 5_000, 6_000, 2),  # soon after the last cooldown: consecutive
        (3, 5_000, 10_000, 1),  # 5 s later: counted from 1 again
    ],
)
def test_consecutive_429s_are_counted_until_a_quiet_period(
    strikes: int, until_ms: int, now_ms: int, expected: int
) -> None:
    """A 429 shortly after a cooldown ended escalates; one after a quiet period starts over."""
    assert gcra.next_strikes(strikes, until_ms, now_ms, gcra.DEFAULT_STRIKE_RESET_MS) == expected


@pytest.mark.parametrize("rate", [2, 10, 50, 60, 100, 1000])
def test_the_default_margin_keeps_every_window_at_n_with_25_ms_of_latency_spread(rate: int) -> None:
    """At the default margin and tolerance, latencies spread by 25 ms never make a window exceed N."""
    policy = LimiterPolicy(rate)
    budget_us = gcra.latency_spread_budget_us(policy)
    assert budget_us >= 25_000
    interval, tolerance = policy.base_interval_us, policy.tolerance_us
    assert gcra.max_requests_in_window(interval, tolerance, 1_000_000, jitter_us=budget_us) <= rate
    assert gcra.max_requests_in_window(interval, tolerance, 1_000_000, jitter_us=budget_us + 1) == rate + 1
    assert 1_000_000 / interval >= 0.96 * rate


def test_policy_rejects_values_that_cannot_work() -> None:
    """A nonsense tunable fails at construction with the field and the value."""
    with pytest.raises(ValueError, match="rate_per_s"):
        LimiterPolicy(0)
    with pytest.raises(ValueError, match="safety_margin"):
        LimiterPolicy(10, safety_margin=1.5)
    with pytest.raises(ValueError, match="min_factor_ppm"):
        LimiterPolicy(10, decrease_ppm=50_000)
