"""The in-memory store, the limiter's executable specification, on a fake clock.

The tables here are run against ``RedisStore`` too (tests/integration/test_limiter_redis.py):
both stores must give the same answers, step by step.
"""

from __future__ import annotations

import random

import pytest
from structlog.testing import capture_logs

from dropq.workers.limiter import Decision, LimiterPolicy, MemoryStore, RateLimiter
from dropq.workers.limiter.gcra import PPM
from dropq.workers.limiter.store import Cooldown, LimiterState

# 10 requests/s without margin: one interval = 100 ms, a slot usable up to 50 ms late.
TABLE_POLICY = LimiterPolicy(10, safety_margin=1.0, tolerance_us=50_000)

# (now_ms, cost) -> (allowed, retry_after_ms), in order, on one fresh account.
ACQUIRE_TABLE: list[tuple[int, int, bool, int]] = [
    (0, 1, True, 0),  # first request: granted, next slot at 100
    (0, 1, False, 50),  # slot 100 may be used from 50 on
    (49, 1, False, 1),
    (50, 1, True, 0),  # used 50 ms early; next slot at 200
    (100, 1, False, 50),
    (150, 1, True, 0),  # next slot at 300
    (1_000, 1, True, 0),  # idle time is not banked: next slot at 1100
    (1_000, 3, False, 50),
    (1_050, 3, True, 0),  # three requests at once push the schedule by 300 ms, to 1400
    (1_100, 1, False, 250),
    (1_349, 1, False, 1),
    (1_350, 1, True, 0),
]

# 3 requests/s, no tolerance: the interval (333.334 ms) is not a whole number of milliseconds.
ROUNDING_POLICY = LimiterPolicy(3, safety_margin=1.0, tolerance_us=0)
ROUNDING_TABLE: list[tuple[int, int, bool, int]] = [
    (0, 1, True, 0),
    (0, 1, False, 334),  # 333.334 ms rounds up
    (333, 1, False, 1),
    (334, 1, True, 0),  # granted at 334.000: next slot at 667.334
    (667, 1, False, 1),
    (668, 1, True, 0),
]

FEEDBACK_POLICY = LimiterPolicy(10, safety_margin=1.0)
# (now_ms, server_wait_ms, jitter_ppm) -> Cooldown(wait_ms, strikes, factor_ppm), in order.
FEEDBACK_TABLE: list[tuple[int, int | None, int, Cooldown]] = [
    (0, None, 0, Cooldown(500, 1, 700_000)),  # first 429: 0.5..1 s, rate down to 70%
    (100, None, PPM, Cooldown(400, 1, 702_000)),  # an in-flight 429 of the same episode changes nothing
    (200, 3_000, 0, Cooldown(3_000, 1, 704_000)),  # ...but a longer server wait extends the cooldown
    (3_200, None, PPM, Cooldown(2_000, 2, 534_800)),  # right after: consecutive, doubled, rate down again
    (40_000, None, PPM // 2, Cooldown(750, 1, 700_000)),  # after a quiet period: from 1 again, rate had recovered
]


class FakeClock:
    """A millisecond clock that only moves when told."""

    def __init__(self, now_ms: int = 0) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, seconds: float) -> None:
        self.now_ms += round(seconds * 1000)


@pytest.mark.parametrize(
    ("policy", "table"),
    [(TABLE_POLICY, ACQUIRE_TABLE), (ROUNDING_POLICY, ROUNDING_TABLE)],
    ids=["tolerance", "rounding"],
)
def test_memory_store_follows_the_acquire_table(policy: LimiterPolicy, table: list[tuple[int, int, bool, int]]) -> None:
    """Each (time, cost) step gives the tabled (allowed, retry_after_ms)."""
    store = MemoryStore(FakeClock())
    got = [store.acquire("acct", policy, cost, now_ms=now).decision for now, cost, _, _ in table]
    assert got == [Decision(allowed, retry) for _, _, allowed, retry in table]


def test_memory_store_follows_the_feedback_table() -> None:
    """Each reported 429 gives the tabled cooldown, strikes and adaptive factor."""
    store = MemoryStore(FakeClock())
    got = [
        store.report_429("acct", FEEDBACK_POLICY, wait, jitter, now_ms=now) for now, wait, jitter, _ in FEEDBACK_TABLE
    ]
    assert got == [expected for *_, expected in FEEDBACK_TABLE]


def test_a_cooldown_refuses_every_acquire_until_it_ends() -> None:
    """While a cooldown runs, acquire answers its remaining time; afterwards, the lowered rate applies."""
    clock = FakeClock(10_000)
    store = MemoryStore(clock)
    store.report_429("acct", TABLE_POLICY, 2_000, 0)
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=10_500).decision == Decision(False, 1_500)
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=12_000).decision == Decision(True, 0)
    # factor 0.7 + 2 s * 2%/s = 0.74: interval 135.136 ms, minus 50 ms tolerance
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=12_000).decision == Decision(False, 86)
    assert store.state("acct", TABLE_POLICY, now_ms=12_000) == LimiterState(740_000, 0, 1, 135)


def test_accounts_do_not_share_state() -> None:
    """Two API keys have two limiters."""
    store = MemoryStore(FakeClock())
    assert store.acquire("a", TABLE_POLICY, 1, now_ms=0).decision.allowed
    assert store.acquire("b", TABLE_POLICY, 1, now_ms=0).decision.allowed
    assert not store.acquire("a", TABLE_POLICY, 1, now_ms=0).decision.allowed


def test_greedy_waiters_never_see_more_than_n_in_a_second_and_get_at_least_095_n() -> None:
    """Eight waiters that come back up to 3 ms late: every 1 s window <= N, and >= 0.95 N sustained."""
    # Given
    clock = FakeClock()
    limiter = RateLimiter(MemoryStore(clock), "acct", 50)
    rng = random.Random(5)
    next_try = [0] * 8
    grants: list[int] = []
    # When: 20 simulated seconds, one millisecond at a time
    for now in range(20_000):
        clock.now_ms = now
        for waiter, at in enumerate(next_try):
            if at > now:
                continue
            decision = limiter.acquire()
            if decision.allowed:
                grants.append(now)
            next_try[waiter] = now + decision.retry_after_ms + rng.randint(0, 3)
    # Then
    busiest = max(sum(1 for g in grants if start <= g <= start + 1_000) for start in grants)
    assert busiest <= 50
    assert len(grants) >= 0.95 * 50 * 20


def test_rate_limiter_sleeps_short_waits_and_hands_back_long_ones() -> None:
    """acquire_waiting sleeps inline within its budget; a cooldown is returned for re-enqueueing."""
    clock = FakeClock(1_000)
    limiter = RateLimiter(MemoryStore(clock), "acct", 10, policy=TABLE_POLICY)
    assert limiter.acquire_waiting(sleep=clock.sleep) == Decision(True, 0)
    assert limiter.acquire_waiting(sleep=clock.sleep) == Decision(True, 0)
    assert clock.now_ms == 1_050
    assert limiter.acquire_waiting(max_wait_ms=10, sleep=clock.sleep) == Decision(False, 100)
    assert clock.now_ms == 1_050
    limiter.report_429(retry_after_s=5)
    assert limiter.acquire_waiting(sleep=clock.sleep) == Decision(False, 5_000)


def test_report_429_uses_the_server_wait_or_backs_off_and_logs_no_secret() -> None:
    """A Retry-After is honoured (clipped); without one the jittered backoff applies; one rate_limited event each."""
    clock = FakeClock(0)
    limiter = RateLimiter(MemoryStore(clock), "acct", 10, rng=random.Random(1))
    with capture_logs() as logs:
        assert limiter.report_429(retry_after_s=1.2) == 1_200
        clock.now_ms = 1_200
        first = limiter.report_429()
        clock.now_ms = 100_000
        assert limiter.report_429(retry_after_s=86_400) == 600_000
    assert 1_000 <= first <= 2_000  # second consecutive episode: ceiling 2 s, equal jitter
    assert [e["event"] for e in logs] == ["rate_limited"] * 3
    assert logs[0]["account"] == "acct" and logs[0]["cooldown_ms"] == 1_200
    assert limiter.state().strikes == 1


def test_rate_limiter_refuses_a_cost_below_one() -> None:
    """A cost must be a positive integer."""
    limiter = RateLimiter(MemoryStore(FakeClock()), "acct", 10)
    with pytest.raises(ValueError, match="cost"):
        limiter.acquire(0)


def test_the_limiter_has_room_until_a_request_is_promised_ahead_of_now() -> None:
    """Room while requests come slower than the rate; none once grants run ahead of the clock, or in a cooldown."""
    clock = FakeClock(1_000_000)
    limiter = RateLimiter(
        MemoryStore(clock), "acct", 10, policy=LimiterPolicy(10, safety_margin=1.0, tolerance_us=500_000)
    )
    assert limiter.has_room()
    assert limiter.acquire().allowed
    assert limiter.has_room(), "one grant at 10/s: its slot is now, nothing promised beyond"
    assert limiter.acquire().allowed
    assert not limiter.has_room(), "two at once: the second's slot is 100 ms ahead"
    clock.sleep(0.2)
    assert limiter.has_room()
    limiter.report_429(1.0)
    assert not limiter.has_room()


# Lanes on TABLE_POLICY (a slot every 100 ms, usable 50 ms early): (now_ms, lane, request id) -> decision.
LANE_TABLE: list[tuple[int, str, str, bool, int]] = [
    (0, "bulk", "", True, 0),  # next slot at 100, usable from 50
    (0, "first", "a", False, 50),  # an interactive request waits for that slot: it holds it until 100
    (10, "bulk", "", False, 100),  # the backfill's requests are held back meanwhile
    (50, "first", "a", True, 0),  # and the slot goes to the interactive one; next at 200
    (50, "bulk", "", False, 100),  # nobody first in line: the bucket alone decides
    (150, "bulk", "", True, 0),  # next at 300
    (150, "first", "b", False, 100),  # waits for 300 (usable from 250), holds bulk back until 300
    (260, "bulk", "", False, 100),
    (300, "bulk", "", True, 0),  # "b" never came back: past its slot and grace, bulk takes the slot
    (300, "", "", False, 50),  # no lane: the bucket alone
]


def test_the_first_lane_gets_the_slot_it_waits_for_and_bulk_takes_the_rest() -> None:
    """The specification of the lanes, which acquire.lua follows (tests/integration/test_limiter_redis.py)."""
    store = MemoryStore(clock_ms=lambda: 0)
    got = [
        store.acquire("acct", TABLE_POLICY, 1, now_ms=now, lane=lane, request_id=rid).decision
        for now, lane, rid, _, _ in LANE_TABLE
    ]
    assert got == [Decision(allowed, retry) for *_, allowed, retry in LANE_TABLE]
