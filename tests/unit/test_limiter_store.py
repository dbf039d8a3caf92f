"""The in-memory store, the limiter's executable specification, on a fake clock.

The tables here are run against ``RedisStore`` too (tests/integration/test_limiter_redis.py):
both stores must give the same answers, step by step.
"""

from __future__ import annotations

import random

import pytest
from structlog.testing import capture_logs

from dropq.workers.limiter import Decision, LimiterPolicy, MemoryStore, RateLimiter, gcra
from dropq.workers.limiter.gcra import PPM
from dropq.workers.limiter.store import Cooldown, Grant, LimiterState, LimiterStore

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
    (0, None, 0, Cooldown(500, 1, 900_000)),  # first 429: 0.5..1 s, rate down to 90%
    (100, None, PPM, Cooldown(400, 1, 902_000)),  # an in-flight 429 of the same episode changes nothing
    (200, 3_000, 0, Cooldown(3_000, 1, 904_000)),  # ...but a longer server wait extends the cooldown
    (3_200, None, PPM, Cooldown(2_000, 2, 867_600)),  # right after: consecutive, doubled, rate down again
    (40_000, None, PPM // 2, Cooldown(750, 1, 900_000)),  # after a quiet period: from 1 again, rate had recovered
    (44_000, None, 0, Cooldown(1_000, 2, 882_000)),  # 3.25 s after that cooldown: consecutive
    (50_000, None, 0, Cooldown(500, 1, 900_000)),  # 5 s after it: a new episode, not a doubled cooldown
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
    # factor 0.9 + 2 s * 2%/s = 0.94: interval 106.383 ms, minus 50 ms tolerance
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=12_000).decision == Decision(False, 57)
    assert store.state("acct", TABLE_POLICY, now_ms=12_000) == LimiterState(940_000, 0, 1, 106)


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
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    assert limiter.acquire_waiting(sleep=clock.sleep, clock=seconds) == Decision(True, 0)
    assert limiter.acquire_waiting(sleep=clock.sleep, clock=seconds) == Decision(True, 0)
    assert clock.now_ms == 1_050
    # The next slot (1100, usable from 1050) is beyond a 10 ms budget: back when it is within reach.
    assert limiter.acquire_waiting(max_wait_ms=10, sleep=clock.sleep, clock=seconds) == Decision(False, 90)
    assert clock.now_ms == 1_050
    limiter.report_429(retry_after_s=5)
    assert limiter.acquire_waiting(sleep=clock.sleep, clock=seconds) == Decision(False, 5_000)


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


# Lines and lanes on TABLE_POLICY (a slot every 100 ms, usable 50 ms early; a request in line is told to
# come back 100 ms before its slot): (now_ms, lane, request id, horizon_ms) -> Decision, in order.
LINE_TABLE: list[tuple[int, str, str, int, Decision]] = [
    (0, "bulk", "", 0, Decision(True, 0)),  # next slot at 100
    (0, "bulk", "b1", 150, Decision(True, 0, 50)),  # slot 100 reserved, to be used from 50 on; next at 200
    (0, "bulk", "b2", 150, Decision(True, 0, 150)),  # slot 200, from 150: within the horizon
    (0, "bulk", "b3", 150, Decision(False, 200)),  # slot 300 is beyond it: promised, back at 200
    (0, "bulk", "b4", 150, Decision(False, 300)),  # promised 400, after b3: each waiter its own time
    (10, "bulk", "", 0, Decision(False, 240)),  # no id, no line: when slot 300 opens
    (150, "bulk", "b4", 150, Decision(False, 150)),  # early: slot 300 is b3's; b4 keeps its place
    (200, "bulk", "b3", 150, Decision(True, 0, 50)),  # back on time: its slot
    (210, "first", "f1", 250, Decision(True, 0, 140)),  # an interactive request takes the next slot (400)
    (300, "bulk", "b4", 150, Decision(True, 0, 150)),  # b4 back: slot 500, later than promised, within reach
    (300, "first", "f2", 0, Decision(False, 200)),  # the first lane's line: promised 600
    (310, "bulk", "b5", 150, Decision(False, 290)),  # the first lane waits: bulk goes after it (700)
    (320, "bulk", "", 0, Decision(False, 100)),  # ...and takes no gap meanwhile
    (500, "first", "f2", 250, Decision(True, 0, 50)),
    (600, "bulk", "b5", 150, Decision(True, 0, 50)),
    (600, "bulk", "b6", 0, Decision(False, 100)),  # promised 800; it will be late
    (1_000, "bulk", "", 0, Decision(True, 0)),  # a promise whose time has passed holds nobody back
    (1_700, "bulk", "b6", 0, Decision(True, 0)),  # b6, late but within its grace: the next free slot
    (2_100, "bulk", "g1", 0, Decision(True, 0)),  # next at 2200
    (2_100, "bulk", "g2", 0, Decision(False, 1)),  # promised 2200
    (2_100, "bulk", "g3", 0, Decision(False, 100)),  # promised 2300
    (2_101, "bulk", "g3", 150, Decision(True, 0, 49)),  # early, but g2 is due and not back: the gap is free
    (2_102, "bulk", "g2", 150, Decision(True, 0, 148)),  # g2 back: the next slot, still within reach
    (2_102, "", "", 0, Decision(False, 248)),  # no lane: the bucket alone
]

# After a 429 with a server wait of 1 s at 0 (the rate down to 90%: a slot every 111 ms), waiters are
# promised slots after the cooldown, each its own.
COOLDOWN_LINE_TABLE: list[tuple[int, str, str, int, Decision]] = [
    (0, "bulk", "c1", 150, Decision(False, 900)),  # promised 1000, the cooldown's end
    (0, "bulk", "c2", 150, Decision(False, 1_012)),  # promised 1111
    (0, "", "", 0, Decision(False, 1_000)),
    (500, "bulk", "c2", 150, Decision(False, 512)),  # early: keeps its place
    (900, "bulk", "c1", 150, Decision(True, 0, 100)),  # reserves 1000: sends once the cooldown is over
    (1_000, "bulk", "c2", 150, Decision(True, 0, 59)),  # early, nobody due before it: the next slot (1109)
]


# w2 misses the slot it held (150) and asks again at 165 ("!": missed=True): as one due in line it takes the
# next free slot (300), where a newcomer would be promised the end of the line (500, back at 400).
MISSED_LINE_TABLE: list[tuple[int, str, str, int, Decision]] = [
    (0, "bulk", "w0", 150, Decision(True, 0)),  # next slot at 100
    (0, "bulk", "w1", 150, Decision(True, 0, 50)),
    (0, "bulk", "w2", 150, Decision(True, 0, 150)),  # slot 200, from 150
    (0, "bulk", "w3", 150, Decision(False, 200)),  # promised 300
    (0, "bulk", "w4", 150, Decision(False, 300)),  # promised 400
    (165, "bulk", "w2!", 150, Decision(True, 0, 85)),  # missed 150: slot 300, not the end of the line
    (200, "bulk", "w3", 150, Decision(True, 0, 150)),  # back on time: one slot later than promised, in reach
    (300, "bulk", "w4", 150, Decision(True, 0, 150)),
    (400, "bulk", "n1", 150, Decision(True, 0, 150)),
    (400, "bulk", "n2!", 150, Decision(False, 200)),  # "missed" but beyond reach: the end of the line (700)
]


def run_line_table(store: LimiterStore, table: list[tuple[int, str, str, int, Decision]], base_ms: int = 0) -> None:
    """Play a line table on ``store``; every decision must be the tabled one (an id ending in ! missed its slot)."""
    got = [
        store.acquire(
            "acct", TABLE_POLICY, 1, now_ms=base_ms + now, lane=lane, request_id=rid.rstrip("!"), horizon_ms=h,
            missed=rid.endswith("!"),
        ).decision
        for now, lane, rid, h, _ in table
    ]  # fmt: skip
    assert got == [decision for *_, decision in table]


def test_waiters_in_line_are_each_told_their_own_time_and_the_first_lane_goes_first() -> None:
    """The specification of reservations, lines and lanes, which acquire.lua follows (test_limiter_redis.py)."""
    run_line_table(MemoryStore(clock_ms=lambda: 0), LINE_TABLE)


def test_waiters_during_a_cooldown_are_promised_slots_after_it() -> None:
    """A cooldown spreads its waiters over the slots after it instead of sending them all back at its end."""
    store = MemoryStore(clock_ms=lambda: 0)
    store.report_429("acct", TABLE_POLICY, 1_000, 0, now_ms=0)
    run_line_table(store, COOLDOWN_LINE_TABLE)


def test_a_request_that_missed_its_slot_asks_again_as_one_due_in_line() -> None:
    """A few milliseconds late at its slot, a request takes the next free one instead of the whole line's wait."""
    run_line_table(MemoryStore(clock_ms=lambda: 0), MISSED_LINE_TABLE)
    newcomer = MemoryStore(clock_ms=lambda: 0)
    run_line_table(newcomer, MISSED_LINE_TABLE[:5])
    assert newcomer.acquire(
        "acct", TABLE_POLICY, 1, now_ms=165, lane="bulk", request_id="w2", horizon_ms=150
    ).decision == Decision(False, 235)  # fmt: skip


def test_a_crowd_of_waiters_asks_about_once_per_grant() -> None:
    """200 requests waiting at 50/s, each coming back when told: about one acquire per grant, not one per slot each."""
    clock = FakeClock()
    limiter = RateLimiter(MemoryStore(clock), "acct", 50)
    next_try = dict.fromkeys(range(200), 0)
    asks = 0
    grants: list[int] = []
    while next_try and clock.now_ms < 20_000:
        clock.now_ms = min(next_try.values())
        for waiter in [w for w, at in next_try.items() if at <= clock.now_ms]:
            asks += 1
            decision = limiter.store.acquire(
                "acct", limiter.policy, 1, lane="bulk", request_id=str(waiter), horizon_ms=150
            ).decision
            if decision.allowed:
                grants.append(clock.now_ms + decision.delay_ms)
                del next_try[waiter]
            else:
                next_try[waiter] = clock.now_ms + decision.retry_after_ms
    assert len(grants) == 200
    assert asks <= 2 * 200, asks
    busiest = max(sum(1 for g in grants if start <= g < start + 1_000) for start in grants)
    assert busiest <= 50
    assert max(grants) <= 200 / (50 * 0.97) * 1_000 + 200, max(grants)


def _second_slot_goes_on_time(limiter: RateLimiter, clock: FakeClock) -> None:
    """From 1000 on a fresh account: a grant, then a reservation of the next slot, held until it opens (1050)."""
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    assert limiter.acquire().allowed  # the next slot: 1100, usable from 1050
    reservation = limiter.reserve(clock=seconds)
    assert reservation.decision == Decision(True, 0, 50)
    assert limiter.hold(reservation, clock.sleep, seconds) == Decision(True, 0)
    assert clock.now_ms == 1_050


def test_a_reserved_slot_is_not_used_when_missed_or_when_a_cooldown_began_meanwhile() -> None:
    """reserve, prepare, hold: on time it goes; more than LATE_SEND_MS late, or after a 429 meanwhile, it does not."""
    clock = FakeClock(1_000)
    limiter = RateLimiter(MemoryStore(clock), "acct", 10, policy=TABLE_POLICY)
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    _second_slot_goes_on_time(limiter, clock)
    missed = limiter.reserve(max_wait_ms=100, clock=seconds)  # 1200, from 1150: no budget left after it
    clock.sleep(0.1 + (gcra.LATE_SEND_MS + 1) / 1000)  # the preparation took the thread past its slot
    assert limiter.hold(missed, clock.sleep, seconds) == Decision(False, 0)
    assert clock.now_ms == 1_161
    # With budget left, the slot missed is asked for again at once: the next one.
    again = limiter.reserve(clock=seconds)  # 1300, from 1250
    clock.sleep((89 + gcra.LATE_SEND_MS + 1) / 1000)
    assert limiter.hold(again, clock.sleep, seconds) == Decision(True, 0)
    assert clock.now_ms == 1_350  # slot 1400, from 1350
    cooled = limiter.reserve(clock=seconds)
    limiter.report_429(retry_after_s=2)
    # Looked for 20 ms before its slot (COOLDOWN_LOOK_LEAD_S), the cooldown has that much more to run.
    assert limiter.hold(cooled, clock.sleep, seconds) == Decision(False, 2_000 - cooled.decision.delay_ms + 20)


def test_a_promise_the_budget_cannot_reach_is_refused_at_once_not_asked_for_again_and_again() -> None:
    """A line's slot 300 ms away, 250 ms of budget: the refusal comes back at once, with the time to return.

    Slept until its return time (200 ms), the request would have 50 ms of horizon left for a slot 100 ms
    after it: refused again, promised the same slot, told to come back in 1 ms, until the budget ran out.
    """
    clock = FakeClock(1_000)
    policy = LimiterPolicy(10, safety_margin=1.0, tolerance_us=30_000)
    limiter = RateLimiter(MemoryStore(clock), "acct", 10, policy=policy)
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    assert limiter.acquire(cost=3).allowed  # the next slot: 1300, usable from 1270
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock.sleep(s)

    refused = limiter.reserve(max_wait_ms=250, sleep=sleep, lane=gcra.FIRST_LANE, request_id="r", clock=seconds)
    assert refused.decision == Decision(False, 200)  # back at 1200, LINE_LEAD_MS before its slot
    assert sleeps == []
    clock.sleep(0.2)  # re-enqueued with that countdown: back with a whole budget
    back = limiter.reserve(max_wait_ms=250, sleep=sleep, lane=gcra.FIRST_LANE, request_id="r", clock=seconds)
    assert back.decision == Decision(True, 0, 70)
    assert sleeps == []


def test_a_slot_is_timed_from_the_stores_decision_not_from_an_answer_that_came_back_late() -> None:
    """An answer that waited 50 ms for the interpreter lock still sends at its slot, not 50 ms after it."""
    clock = FakeClock(1_000)

    class SlowAnswers(MemoryStore):
        slow_ms = 0

        def acquire(self, *args: object, **kwargs: object) -> Grant:  # type: ignore[override]
            grant = super().acquire(*args, **kwargs)  # type: ignore[arg-type]
            clock.now_ms += self.slow_ms  # the decision is taken; its answer comes back this much later
            return grant

    store = SlowAnswers(clock)
    limiter = RateLimiter(store, "acct", 10, policy=TABLE_POLICY)
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    assert limiter.acquire().allowed  # the next slot: 1100, usable from 1050
    fast = limiter.reserve(clock=seconds)  # a fast answer: the clocks agree
    assert limiter.hold(fast, clock.sleep, seconds) == Decision(True, 0)
    assert clock.now_ms == 1_050
    store.slow_ms = 50
    slow = limiter.reserve(clock=seconds)  # decided at 1050 (slot 1200, from 1150), answered at 1100
    assert slow.decision == Decision(True, 0, 100)
    assert limiter.hold(slow, clock.sleep, seconds) == Decision(True, 0)
    assert clock.now_ms == 1_150  # sent at its slot; counted from the answer it would have waited until 1200


def test_the_cooldown_is_looked_for_before_the_slot_so_a_slow_look_does_not_make_the_send_late() -> None:
    """hold() reads the cooldown 20 ms before the slot: a look that takes 15 ms still sends at the slot."""
    clock = FakeClock(1_000)

    class SlowLooks(MemoryStore):
        def state(self, *args: object, **kwargs: object) -> LimiterState:  # type: ignore[override]
            clock.now_ms += 15  # a round trip behind the interpreter lock
            return super().state(*args, **kwargs)  # type: ignore[arg-type]

    # At the slot (1050); looked for after it, the send would have gone at 1065.
    _second_slot_goes_on_time(RateLimiter(SlowLooks(clock), "acct", 10, policy=TABLE_POLICY), clock)


def test_a_slot_granted_during_a_cooldown_is_used_once_the_cooldown_is_over() -> None:
    """hold() looks for the cooldown before the slot: one that ends at the slot does not refuse it."""
    clock = FakeClock(1_000)
    limiter = RateLimiter(MemoryStore(clock), "acct", 10, policy=TABLE_POLICY)
    seconds = lambda: clock.now_ms / 1000  # noqa: E731
    limiter.report_429(retry_after_s=0.1)
    reservation = limiter.reserve(lane=gcra.FIRST_LANE, request_id="r", clock=seconds)
    assert reservation.decision == Decision(True, 0, 100)  # the slot at the cooldown's end
    assert limiter.hold(reservation, clock.sleep, seconds) == Decision(True, 0)
    assert clock.now_ms == 1_100
