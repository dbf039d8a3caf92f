"""The Redis store runs the same tables as the in-memory specification, on a real private Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from dropq.workers import keys
from dropq.workers.limiter import Decision, LimiterPolicy, RateLimiter, RedisStore
from dropq.workers.limiter.store import LimiterState
from tests.unit.test_limiter_store import (
    ACQUIRE_TABLE,
    COOLDOWN_LINE_TABLE,
    FEEDBACK_POLICY,
    FEEDBACK_TABLE,
    LINE_TABLE,
    MISSED_LINE_TABLE,
    ROUNDING_POLICY,
    ROUNDING_TABLE,
    TABLE_POLICY,
    run_line_table,
)


@pytest.mark.parametrize(
    ("policy", "table"),
    [(TABLE_POLICY, ACQUIRE_TABLE), (ROUNDING_POLICY, ROUNDING_TABLE)],
    ids=["tolerance", "rounding"],
)
def test_redis_store_follows_the_acquire_table(
    redis_client: redis.Redis, policy: LimiterPolicy, table: list[tuple[int, int, bool, int]]
) -> None:
    """acquire.lua gives the same (allowed, retry_after_ms) as the specification at every step."""
    store = RedisStore(redis_client)
    base_ms = 1_700_000_000_000  # a realistic epoch: microsecond TATs near 2**51 must stay exact
    got = [store.acquire("acct", policy, cost, now_ms=base_ms + now).decision for now, cost, _, _ in table]
    assert got == [Decision(allowed, retry) for _, _, allowed, retry in table]


def test_redis_store_follows_the_line_table(redis_client: redis.Redis) -> None:
    """acquire.lua's reservations, lines and lanes give the same decisions as the specification at every step."""
    run_line_table(RedisStore(redis_client), LINE_TABLE, base_ms=1_700_000_000_000)


def test_redis_store_follows_the_missed_line_table(redis_client: redis.Redis) -> None:
    """acquire.lua lets a request that missed its slot ask as one due in line, as the specification does."""
    run_line_table(RedisStore(redis_client), MISSED_LINE_TABLE, base_ms=1_700_000_000_000)


def test_redis_store_follows_the_cooldown_line_table(redis_client: redis.Redis) -> None:
    """acquire.lua promises slots after a cooldown as the specification does."""
    store = RedisStore(redis_client)
    base_ms = 1_700_000_000_000
    store.report_429("acct", TABLE_POLICY, 1_000, 0, now_ms=base_ms)
    run_line_table(store, COOLDOWN_LINE_TABLE, base_ms=base_ms)


def test_redis_store_follows_the_feedback_table(redis_client: redis.Redis) -> None:
    """feedback.lua gives the same cooldown, strikes and factor as the specification at every step."""
    store = RedisStore(redis_client)
    got = [
        store.report_429("acct", FEEDBACK_POLICY, wait, jitter, now_ms=now) for now, wait, jitter, _ in FEEDBACK_TABLE
    ]
    assert got == [expected for *_, expected in FEEDBACK_TABLE]


def test_a_cooldown_refuses_every_acquire_until_it_ends(redis_client: redis.Redis) -> None:
    """The same cooldown scenario as the specification's, on Redis."""
    store = RedisStore(redis_client)
    store.report_429("acct", TABLE_POLICY, 2_000, 0, now_ms=10_000)
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=10_500).decision == Decision(False, 1_500)
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=12_000).decision == Decision(True, 0)
    assert store.acquire("acct", TABLE_POLICY, 1, now_ms=12_000).decision == Decision(False, 57)
    assert store.state("acct", TABLE_POLICY, now_ms=12_000) == LimiterState(940_000, 0, 1, 106)


def test_every_key_the_limiter_writes_has_a_ttl_and_no_key_holds_the_api_key(redis_client: redis.Redis) -> None:
    """Bucket, lines, cooldown and adaptive rate all expire; their names carry the account hash only."""
    account = keys.account_id("secret-api-key-123")
    store = RedisStore(redis_client)
    store.acquire(account, TABLE_POLICY, 1)
    assert not store.acquire(account, TABLE_POLICY, 1, lane="first", request_id="get:b1:1").decision.allowed
    assert not store.acquire(account, TABLE_POLICY, 1, lane="bulk", request_id="post:b2:1").decision.allowed
    store.report_429(account, TABLE_POLICY, None, 0)
    written = sorted(redis_client.keys("*"))
    assert written == sorted(
        [
            keys.limiter_key(account),
            keys.limiter_line_key(account, "first"),
            keys.limiter_line_key(account, "bulk"),
            keys.cooldown_key(account),
            keys.adaptive_rate_key(account),
        ]
    )
    assert all(0 < redis_client.pttl(k) <= 60_000 for k in written)
    assert not any("secret" in k for k in written)


def test_without_now_the_scripts_use_the_redis_clock(redis_client: redis.Redis) -> None:
    """In production no time is passed: the decision is stamped with Redis TIME."""
    limiter = RateLimiter(RedisStore(redis_client), "acct", 10)
    before_us = time.time() * 1e6
    grant = limiter.acquire_grant()
    after_us = time.time() * 1e6
    assert grant.decision == Decision(True, 0)
    assert before_us - 50_000 <= grant.clock_us <= after_us + 50_000
    # Real time passes between the calls (more on a loaded machine): bounds by what can't be exceeded.
    refused = limiter.acquire()
    assert not refused.allowed and 0 < refused.retry_after_ms <= 104
    assert limiter.report_429(retry_after_s=2.5) == 2_500
    assert 1_500 <= limiter.acquire().retry_after_ms <= 2_500
    assert 900_000 <= limiter.state().factor_ppm <= 940_000  # recovering since the 429


def test_racing_threads_get_exactly_the_capacity(redis_client: redis.Redis, redis_url: str) -> None:
    """Twenty threads racing at one frozen instant get exactly one grant between them (no double issue)."""
    store = RedisStore(redis.Redis.from_url(redis_url))
    policy = LimiterPolicy(10, safety_margin=1.0, tolerance_us=0)
    start = threading.Barrier(20)
    results: list[bool] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        for _ in range(5):
            allowed = store.acquire("acct", policy, 1, now_ms=1_000_000).decision.allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=race) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 100
    assert results.count(True) == 1
