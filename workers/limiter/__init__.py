"""The shared limiter: one per API key, in Redis, for every worker process on every machine.

- ``gcra``: the arithmetic (GCRA, adaptive rate, 429 backoff), pure.
- ``store``: the storage interface and ``MemoryStore``, its executable specification.
- ``redis_store``: ``RedisStore``, the same in Lua scripts clocked by Redis ``TIME``.
- ``limiter``: ``RateLimiter``, the facade tasks use (acquire, a short wait slept inline, 429 feedback).
- ``credits``: ``CreditGuard``, balance, daily budget and the pause on missing credits.
"""

from __future__ import annotations

from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.limiter.gcra import Decision, LimiterPolicy, delay_ms
from dropq.workers.limiter.limiter import RateLimiter
from dropq.workers.limiter.redis_store import RedisStore
from dropq.workers.limiter.store import Cooldown, Grant, LimiterState, LimiterStore, MemoryStore

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
    "delay_ms",
]
