"""The limiter's state in Redis: one Lua script per operation, clocked by Redis ``TIME``.

Every worker process on every machine that shares an API key shares this
state. The scripts (``acquire.lua``, ``feedback.lua`` beside this module)
document their keys, arguments, returns and TTLs in their headers; they are the
twins of ``MemoryStore``. Tests pass ``now_ms``; production leaves it out, so
no worker's clock can over-issue tokens.
"""

from __future__ import annotations

from pathlib import Path

import redis

from dropq.workers import keys
from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import PPM, Decision, LimiterPolicy
from dropq.workers.limiter.store import Cooldown, Grant, LimiterState

__all__ = ["RedisStore"]

_HERE = Path(__file__).resolve().parent


def _arg(now_ms: int | None) -> str:
    return "" if now_ms is None else str(int(now_ms))


class RedisStore:
    """``LimiterStore`` on Redis.

    Args:
        client: a Redis client (either ``decode_responses`` setting works).
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._acquire = client.register_script((_HERE / "acquire.lua").read_text())
        self._feedback = client.register_script((_HERE / "feedback.lua").read_text())

    def acquire(
        self,
        account: str,
        policy: LimiterPolicy,
        cost: int,
        now_ms: int | None = None,
        *,
        lane: str = gcra.NO_LANE,
        request_id: str = "",
        horizon_ms: int = 0,
        missed: bool = False,
    ) -> Grant:
        """Take a slot now or within ``horizon_ms``, or say when to come back (``acquire.lua``)."""
        script_keys = [
            keys.limiter_key(account),
            keys.cooldown_key(account),
            keys.adaptive_rate_key(account),
            keys.limiter_line_key(account, gcra.FIRST_LANE),
            keys.limiter_line_key(account, gcra.BULK_LANE),
        ]
        args: list[str | int] = [
            cost,
            policy.base_interval_us,
            policy.tolerance_us,
            policy.recovery_ppm_per_s,
            _arg(now_ms),
        ]
        allowed, retry_after_ms, clock_us, delay_ms = self._acquire(
            keys=script_keys, args=[*args, lane, request_id, int(horizon_ms) * 1000, "1" if missed else ""]
        )
        return Grant(Decision(bool(allowed), int(retry_after_ms), int(delay_ms)), int(clock_us))

    def report_429(
        self, account: str, policy: LimiterPolicy, server_wait_ms: int | None, jitter: int, now_ms: int | None = None
    ) -> Cooldown:
        """Start (or extend) the cooldown and lower the adaptive rate, once per episode (``feedback.lua``)."""
        wait_ms, strikes, factor_ppm = self._feedback(
            keys=[keys.cooldown_key(account), keys.adaptive_rate_key(account)],
            args=[
                "" if server_wait_ms is None else int(server_wait_ms),
                jitter,
                policy.backoff_base_ms,
                policy.backoff_cap_ms,
                policy.strike_reset_ms,
                policy.decrease_ppm,
                policy.min_factor_ppm,
                policy.recovery_ppm_per_s,
                _arg(now_ms),
            ],
        )
        return Cooldown(int(wait_ms), int(strikes), int(factor_ppm))

    def state(self, account: str, policy: LimiterPolicy, now_ms: int | None = None) -> LimiterState:
        """Read an account's adaptive factor and cooldown without changing them."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hmget(keys.cooldown_key(account), ["until", "strikes"])
        pipe.hmget(keys.adaptive_rate_key(account), ["factor", "at"])
        pipe.get(keys.limiter_key(account))
        pipe.time()
        (until, strikes), (factor, at), tat_us, (seconds, micros) = pipe.execute()
        now_ms = seconds * 1000 + micros // 1000 if now_ms is None else now_ms
        factor_ppm = PPM
        if factor is not None:
            factor_ppm = gcra.recovered_factor_ppm(int(factor), int(at), now_ms, policy.recovery_ppm_per_s)
        cooldown_left_ms = max(0, int(until) - now_ms) if until is not None else 0
        backlog_ms = gcra.backlog_ms(int(tat_us) if tat_us is not None else None, now_ms * 1000)
        return LimiterState(factor_ppm, cooldown_left_ms, int(strikes or 0), backlog_ms)
