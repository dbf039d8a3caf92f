"""The credit guard on a real private Redis: balance, pause once, one re-checker, resume, daily budget."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import redis
from structlog.testing import capture_logs

from dropq.workers import keys
from dropq.workers.limiter import CreditGuard, Decision


class FakeClock:
    """Wall-clock seconds that only move when told."""

    def __init__(self, iso: str) -> None:
        self.now_s = datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now_s


def test_balance_is_kept_and_shown_in_status(redis_client: redis.Redis) -> None:
    """Every answer's credits_left is kept; status shows it with no pause and no budget."""
    clock = FakeClock("2026-11-26T10:00:00")
    guard = CreditGuard(redis_client, "acct", clock_s=clock)
    assert guard.record_balance(15_277) is False
    status = guard.status()
    assert status["balance"] == 15_277
    assert status["balance_at_ms"] == int(clock.now_s * 1000)
    assert status["paused"] is False and status["budget_spent_today"] == 0
    assert redis_client.pttl(keys.credits_key("acct")) > 0


def test_a_403_pauses_once_and_only_the_first_caller_warns(redis_client: redis.Redis, redis_url: str) -> None:
    """Ten workers hit the 403 together: one pause, one True, one warning; every submit then waits."""
    # Given
    clock = FakeClock("2026-11-26T10:00:00")
    guards = [CreditGuard(redis.Redis.from_url(redis_url), "acct", recheck_s=60, clock_s=clock) for _ in range(10)]
    barrier = threading.Barrier(10)
    started: list[bool] = []
    # When
    with capture_logs() as logs:

        def hit_403(guard: CreditGuard) -> None:
            barrier.wait()
            started.append(guard.pause_for_credits(needed=250))

        threads = [threading.Thread(target=hit_403, args=(g,)) for g in guards]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    # Then
    assert started.count(True) == 1
    assert [e["event"] for e in logs] == ["credits_paused"]
    assert "add credits" in logs[0]["action"] and logs[0]["account"] == "acct"
    decision = guards[3].check_submit(10)
    assert not decision.allowed and 59_000 <= decision.retry_after_ms <= 60_000
    assert guards[0].is_paused()
    status = guards[5].status()
    assert status["paused"] and status["paused_since_ms"] == int(clock.now_s * 1000)
    assert status["paused_needed"] == 250
    assert redis_client.pttl(keys.credits_pause_key("acct")) > 0


def test_one_worker_at_a_time_rechecks_and_submits_resume_when_credits_are_back(redis_client: redis.Redis) -> None:
    """While paused, one re-check per interval; a short balance keeps the pause; enough credits lift it."""
    clock = FakeClock("2026-11-26T10:00:00")
    guard = CreditGuard(redis_client, "acct", recheck_s=0.2, clock_s=clock)
    other = CreditGuard(redis_client, "acct", recheck_s=0.2, clock_s=clock)
    assert guard.pause_for_credits(needed=100)
    # The pause itself holds the first re-check back for one interval.
    assert not guard.should_recheck()
    redis_client.delete(keys.credits_recheck_key("acct"))  # the interval has passed
    assert guard.should_recheck()
    assert not other.should_recheck()
    assert guard.record_balance(40) is False  # an answer with too few credits: still paused
    assert other.is_paused()
    with capture_logs() as logs:
        assert other.record_balance(500) is True
        assert guard.record_balance(500) is False  # only the call that ended the pause says so
    assert [e["event"] for e in logs] == ["credits_resumed"]
    assert guard.check_submit(100) == Decision(True, 0)
    assert guard.pause_for_credits() is True  # a new 403 starts a new pause
    assert guard.resume() is True and guard.resume() is False


def test_the_daily_budget_is_reserved_atomically_per_utc_day(redis_client: redis.Redis) -> None:
    """A budget of 500/day admits submits up to 500 credits, refuses until midnight UTC, and starts over."""
    clock = FakeClock("2026-11-26T23:00:00")
    guard = CreditGuard(redis_client, "acct", budget_per_day=500, clock_s=clock)
    assert guard.check_submit(250) == Decision(True, 0)
    assert guard.check_submit(250) == Decision(True, 0)
    assert guard.check_submit(1) == Decision(False, 3_600_000)  # an hour to midnight UTC
    guard.release(100)  # a POST that did not happen gives its reservation back
    assert guard.check_submit(100) == Decision(True, 0)
    assert guard.status()["budget_spent_today"] == 500
    assert 0 < redis_client.pttl(keys.budget_key("acct", "2026-11-26")) <= 2 * 86_400_000
    clock.now_s += 3_600
    assert guard.status()["budget_day"] == "2026-11-27"
    assert guard.check_submit(250) == Decision(True, 0)
    assert int(redis_client.get(keys.budget_key("acct", "2026-11-26")) or 0) == 500


def test_the_budget_holds_under_concurrent_submits(redis_client: redis.Redis, redis_url: str) -> None:
    """Eight threads asking for 10 credits each, 50 times, against a budget of 1000: exactly 100 admitted."""
    clock = FakeClock("2026-11-26T12:00:00")
    admitted: list[bool] = []

    def submit() -> None:
        guard = CreditGuard(redis.Redis.from_url(redis_url), "acct", budget_per_day=1_000, clock_s=clock)
        admitted.extend(guard.check_submit(10).allowed for _ in range(50))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert admitted.count(True) == 100
    assert int(redis_client.get(keys.budget_key("acct", "2026-11-26")) or 0) == 1_000
