"""The watchdog's scripts and the Redis clock against real Redis."""

from __future__ import annotations

import redis

from dropq.workers import keys
from dropq.workers.jobs.watchdog import Watchdog
from dropq.workers.runtime import RedisClock


def test_arming_renews_the_work_s_keys_at_least_past_the_deadline_and_creates_none(redis_client: redis.Redis) -> None:
    """A key lives until its work's deadline has passed, even with a TTL shorter than the wait."""
    watchdog = Watchdog(redis_client, stall_ms=5_000, ttl_s=3)
    redis_client.set("dropq:batch-records:j/0/0", "[]", ex=3)
    watchdog.arm("b|j/0/0", now_ms=1_000_000, delay_s=60, renew=["dropq:batch-records:j/0/0", "dropq:batch:j/0/0"])
    assert redis_client.ttl("dropq:batch-records:j/0/0") >= 65
    assert not redis_client.exists("dropq:batch:j/0/0"), "a key that is gone stays gone"
    assert watchdog.deadline_of("b|j/0/0") == 1_000_000 + 60_000 + 5_000


def test_a_member_re_armed_after_it_was_found_due_is_kept(redis_client: redis.Redis) -> None:
    """The sweep drops work it found done, unless a live worker armed it again meanwhile."""
    watchdog = Watchdog(redis_client, stall_ms=1_000, ttl_s=60)
    watchdog.arm("f|j", now_ms=0)
    assert watchdog.due(now_ms=2_000, limit=10) == ["f|j"]
    watchdog.arm("f|j", now_ms=1_500)  # a live worker, between the sweep's look and its drop
    watchdog.drop_if_due("f|j", now_ms=2_000)
    assert watchdog.deadline_of("f|j") == 2_500
    assert redis_client.ttl(keys.watchdog_key()) == -1, "one global set; its members leave, it has no TTL"
    watchdog.drop_if_due("f|j", now_ms=3_000)
    assert watchdog.deadline_of("f|j") is None


def test_the_clock_is_redis_s(redis_client: redis.Redis) -> None:
    """Leases and deadlines are read in Redis's clock: within a few ms of TIME."""
    seconds, micros = redis_client.time()
    assert abs(RedisClock(redis_client)() - (seconds + micros / 1e6)) < 0.05
