"""The shared limiter: one per API key, in Redis, for every worker process on every machine.

- ``gcra``: the arithmetic (GCRA, adaptive rate, 429 backoff), pure.
- ``store``: the storage interface and ``MemoryStore``, its executable specification.
- ``redis_store``: ``RedisStore``, the same in Lua scripts clocked by Redis ``TIME``.
- ``limiter``: ``RateLimiter``, the facade tasks use (acquire, 429 feedback).
- ``credits``: ``CreditGuard``, balance, daily budget and the pause on missing credits.
- ``wait_policy``: go, sleep a moment, or re-enqueue with a countdown.
"""

from __future__ import annotations

from workers.limiter.credits import CreditGuard
from workers.limiter.gcra import Decision, LimiterPolicy, delay_ms
from workers.limiter.limiter import RateLimiter
from workers.limiter.redis_store import RedisStore
from workers.limiter.store import Cooldown, Grant, LimiterState, LimiterStore, MemoryStore
from workers.limiter.wait_policy import WaitAction, WaitPlan, plan_wait

__all__ = [
    "RateLimiter",
    "Decision",
    "LimiterPolicy",
    "CreditGuard",
    "RedisStore",
    "MemoryStore",
    "LimiterStore",
    "Grant",
    "Cooldown",
    "LimiterState",
    "WaitAction",
    "WaitPlan",
    "plan_wait",
    "delay_ms",
]
