"""Where the limiter keeps its state: the interface, and the in-memory store that specifies it.

``MemoryStore`` is the executable specification: plain Python over the pure
arithmetic of ``gcra``, on an injected clock. ``RedisStore`` does the same in
two Lua scripts; one test table runs against both. ``MemoryStore`` serves one
process only and never stands in for Redis in an integration test.

State per account (the Redis keys named in brackets, TTLs as in the scripts):

- the GCRA's theoretical arrival time (``limiter_key``): the next free slot, reservations included, kept
  until it is in the past;
- each lane's line (``limiter_line_key``): the requests promised a slot, kept until a second after the
  last promise's grace;
- the cooldown after a 429: until when, and how many consecutive episodes
  (``cooldown_key``), kept until ``strike_reset_ms`` after the cooldown ends;
- the adaptive factor and when it was last lowered (``adaptive_rate_key``),
  kept until it has climbed back to 1.

Each piece of state, once expired, means exactly what its absence means, so
expiry never changes a decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import PPM, Decision, LimiterPolicy

__all__ = ["Grant", "Cooldown", "LimiterState", "LimiterStore", "MemoryStore"]


@dataclass(frozen=True, slots=True)
class Grant:
    """An acquire's decision and the clock reading (microseconds) it was taken at."""

    decision: Decision
    clock_us: int


@dataclass(frozen=True, slots=True)
class Cooldown:
    """What a reported 429 did: the cooldown left, consecutive episodes, the adaptive factor (ppm)."""

    wait_ms: int
    strikes: int
    factor_ppm: int


@dataclass(frozen=True, slots=True)
class LimiterState:
    """An account's limiter as seen now: adaptive factor (ppm), cooldown left (ms), consecutive episodes.

    ``backlog_ms``: how far the bucket's theoretical arrival time is ahead of now (0 when requests
    have come slower than the rate): the grants already promised beyond this moment.
    """

    factor_ppm: int
    cooldown_ms: int
    strikes: int
    backlog_ms: int = 0


class LimiterStore(Protocol):
    """Storage for the shared limiter: every operation is one atomic step."""

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
        """Take a slot now or within ``horizon_ms``, or say when to come back (in line, with a request id).

        ``missed``: the request held a slot and missed it; it asks as one due in line, not as a newcomer.
        """
        ...

    def report_429(
        self, account: str, policy: LimiterPolicy, server_wait_ms: int | None, jitter: int, now_ms: int | None = None
    ) -> Cooldown:
        """Start (or extend) the cooldown and lower the adaptive rate, once per episode."""
        ...

    def state(self, account: str, policy: LimiterPolicy, now_ms: int | None = None) -> LimiterState:
        """Read an account's adaptive factor and cooldown without changing them."""
        ...


@dataclass(slots=True)
class _Entry:
    values: dict[str, int]
    expires_ms: int


class MemoryStore:
    """The limiter's state in a dictionary, on an injected clock; the specification of ``RedisStore``.

    Args:
        clock_ms: the clock in milliseconds, read when an operation gets no ``now_ms``.
    """

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._data: dict[tuple[str, str], _Entry] = {}
        # The lanes' lines, by account and lane: request id -> promised slot (us).
        self._lines: dict[str, dict[str, dict[str, int]]] = {}

    def _get(self, kind: str, account: str, now_ms: int) -> dict[str, int] | None:
        entry = self._data.get((kind, account))
        if entry is None or entry.expires_ms <= now_ms:
            self._data.pop((kind, account), None)
            return None
        return entry.values

    def _put(self, kind: str, account: str, values: dict[str, int], now_ms: int, ttl_ms: int) -> None:
        self._data[(kind, account)] = _Entry(values, now_ms + ttl_ms)

    def _factor(self, account: str, policy: LimiterPolicy, now_ms: int) -> int:
        rate = self._get("rate", account, now_ms)
        if rate is None:
            return PPM
        return gcra.recovered_factor_ppm(rate["factor"], rate["at"], now_ms, policy.recovery_ppm_per_s)

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
        """Take a slot now or within ``horizon_ms``, or say when to come back (in line, with a request id).

        ``missed``: the request held a slot and missed it; it asks as one due in line, not as a newcomer.
        """
        now_ms = self._clock_ms() if now_ms is None else now_ms
        now_us = now_ms * 1000
        lead_us, grace_us = gcra.LINE_LEAD_MS * 1000, gcra.LINE_GRACE_MS * 1000
        cooldown = self._get("cooldown", account, now_ms)
        until_ms = cooldown["until"] if cooldown is not None else None
        cooling = until_ms is not None and now_ms < until_ms
        interval_us = gcra.scaled_interval_us(policy.base_interval_us, self._factor(account, policy, now_ms))
        lines = self._lines.setdefault(account, {gcra.FIRST_LANE: {}, gcra.BULK_LANE: {}})
        lined = lane in gcra.LANES
        line: dict[str, int] | None = None
        if lined:
            for members in lines.values():
                for member in [m for m, slot in members.items() if slot < now_us - grace_us]:
                    del members[member]
            if request_id:
                line = lines[lane]
        bucket = self._get("limiter", account, now_ms)
        start = max(bucket["tat"] if bucket else 0, now_us)
        if cooling:
            assert until_ms is not None
            start = max(start, until_ms * 1000)
        new_tat = start + cost * interval_us
        send_at = max(now_us, start - policy.tolerance_us)
        if cooling:
            assert until_ms is not None
            send_at = max(send_at, until_ms * 1000)
        promised = line.get(request_id) if line is not None else None
        if promised is None and missed and line is not None:
            promised = now_us
        first_waits = lane == gcra.BULK_LANE and bool(lines[gcra.FIRST_LANE])
        early = promised is not None and now_us < promised - lead_us

        ok = send_at - now_us <= horizon_ms * 1000 and not first_waits
        if ok and lined and (promised is None or early):
            # Not in line, or early: only a gap before the next promise still to come.
            later = sorted(slot for m, slot in lines[lane].items() if slot > now_us + lead_us and m != request_id)
            ok = not later or new_tat <= later[0] + policy.tolerance_us
        if ok:
            if line is not None:
                line.pop(request_id, None)
            self._put("limiter", account, {"tat": new_tat}, now_ms, -(-(new_tat - now_us) // 1000) + 1000)
            return Grant(Decision(True, 0, -(-(send_at - now_us) // 1000)), now_us)
        if line is None:
            if first_waits and not cooling:
                wait_ms = -(-interval_us // 1000)
            else:
                wait_ms = -(-(start - policy.tolerance_us - horizon_ms * 1000 - now_us) // 1000)
                if cooling:
                    assert until_ms is not None
                    wait_ms = max(wait_ms, until_ms - now_ms)
            return Grant(Decision(False, max(1, wait_ms)), now_us)
        if promised is not None and early:
            return Grant(Decision(False, max(1, -(-(promised - lead_us - now_us) // 1000))), now_us)
        # A promise at the end of the line (after the first lane's, for a bulk request).
        line.pop(request_id, None)
        slot = start
        if line:
            slot = max(slot, max(line.values()) + interval_us)
        if lane == gcra.BULK_LANE and lines[gcra.FIRST_LANE]:
            slot = max(slot, max(lines[gcra.FIRST_LANE].values()) + interval_us)
        line[request_id] = slot
        return Grant(Decision(False, max(1, -(-(slot - lead_us - now_us) // 1000))), now_us)

    def report_429(
        self, account: str, policy: LimiterPolicy, server_wait_ms: int | None, jitter: int, now_ms: int | None = None
    ) -> Cooldown:
        """Start (or extend) the cooldown and lower the adaptive rate, once per episode."""
        now_ms = self._clock_ms() if now_ms is None else now_ms
        cooldown = self._get("cooldown", account, now_ms) or {"until": 0, "strikes": 0}
        until, strikes = cooldown["until"], cooldown["strikes"]
        if now_ms < until:
            # A 429 for a request sent before the episode began: same episode, no second decrease.
            if server_wait_ms is not None:
                until = max(until, now_ms + server_wait_ms)
                ttl_ms = until - now_ms + policy.strike_reset_ms
                self._put("cooldown", account, {"until": until, "strikes": strikes}, now_ms, ttl_ms)
            return Cooldown(until - now_ms, strikes, self._factor(account, policy, now_ms))
        strikes = gcra.next_strikes(strikes, until, now_ms, policy.strike_reset_ms)
        if server_wait_ms is None:
            wait_ms = gcra.cooldown_ms(strikes, jitter, policy.backoff_base_ms, policy.backoff_cap_ms)
        else:
            wait_ms = server_wait_ms
        ttl_ms = wait_ms + policy.strike_reset_ms
        self._put("cooldown", account, {"until": now_ms + wait_ms, "strikes": strikes}, now_ms, ttl_ms)
        factor = gcra.decreased_factor_ppm(
            self._factor(account, policy, now_ms), policy.decrease_ppm, policy.min_factor_ppm
        )
        ttl_ms = gcra.full_recovery_ms(factor, policy.recovery_ppm_per_s) + 1000
        self._put("rate", account, {"factor": factor, "at": now_ms}, now_ms, ttl_ms)
        return Cooldown(wait_ms, strikes, factor)

    def state(self, account: str, policy: LimiterPolicy, now_ms: int | None = None) -> LimiterState:
        """Read an account's adaptive factor and cooldown without changing them."""
        now_ms = self._clock_ms() if now_ms is None else now_ms
        cooldown = self._get("cooldown", account, now_ms) or {"until": 0, "strikes": 0}
        bucket = self._get("limiter", account, now_ms)
        backlog_ms = gcra.backlog_ms(bucket["tat"] if bucket else None, now_ms * 1000)
        return LimiterState(
            self._factor(account, policy, now_ms), max(0, cooldown["until"] - now_ms), cooldown["strikes"], backlog_ms
        )
