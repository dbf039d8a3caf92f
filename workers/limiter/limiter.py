"""``RateLimiter``: the one limiter per API key that every worker process on every machine shares.

A facade over a ``LimiterStore`` (``RedisStore`` in production, ``MemoryStore``
as the specification) and a ``LimiterPolicy``. It answers, it never blocks for
long: ``acquire`` returns a ``Decision``; ``acquire_waiting`` sleeps only the
short waits it is allowed (a fraction of a second) and hands longer ones back
so the task can re-enqueue itself (see ``DEFAULT_INLINE_WAIT_MS``).

Typical use in a stage (``workers.pipeline.submit`` and ``poll``)::

    decision = limiter.acquire_waiting()
    if not decision.allowed:
        re-enqueue the message with countdown = decision.retry_after_ms / 1000
    response = client.fetch_results(...)   # a 429 anyway:
    # except RateLimitedError as exc: limiter.report_429(exc.retry_after_s); re-enqueue likewise
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable

import structlog

from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import Decision, LimiterPolicy
from dropq.workers.limiter.store import Grant, LimiterState, LimiterStore

__all__ = ["RateLimiter", "DEFAULT_INLINE_WAIT_MS"]

# Waits up to this long are slept inline: shorter than a broker round trip and a countdown's imprecision.
# A longer one is returned for the task to re-enqueue itself with a countdown: waiting, not failing,
# so it never uses the retries that real errors (5xx, timeouts) are allowed.
DEFAULT_INLINE_WAIT_MS = 250

_log = structlog.get_logger(__name__)


class RateLimiter:
    """The shared rate limiter of one account (API key).

    Args:
        store: where the state lives; ``RedisStore`` for anything shared between processes.
        account: the account's short hash (``workers.keys.account_id``), never the API key.
        rate_per_s: the configured limit N; no sliding second sees more than N grants.
        policy: the tunables; the documented defaults for ``rate_per_s`` when none is given.
        rng: the randomness of the backoff jitter; a fresh ``random.Random`` by default.
    """

    def __init__(
        self,
        store: LimiterStore,
        account: str,
        rate_per_s: float,
        *,
        policy: LimiterPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.account = account
        self.policy = policy or LimiterPolicy(rate_per_s)
        if self.policy.rate_per_s != rate_per_s:
            raise ValueError(f"policy.rate_per_s {self.policy.rate_per_s!r} differs from rate_per_s {rate_per_s!r}")
        self._rng = rng or random.Random()

    def acquire(self, cost: int = 1, *, lane: str = gcra.NO_LANE, request_id: str = "") -> Decision:
        """Take ``cost`` tokens now, or say how long to wait (also while a 429 cooldown runs).

        Args:
            cost: requests about to be sent (1 per HTTP request, GET or POST).
            lane: ``gcra.FIRST_LANE`` (an interactive job's request, a poll due): served before bulk requests;
                ``gcra.BULK_LANE`` (a backfill's POSTs): takes the slots no first-lane request waits for.
            request_id: a first-lane request's id, the same over its retries (one is made when empty).

        Returns:
            ``Decision(True, 0)`` with the tokens taken, or ``Decision(False, retry_after_ms)``.
        """
        return self.acquire_grant(cost, lane=lane, request_id=request_id).decision

    def acquire_grant(self, cost: int = 1, *, lane: str = gcra.NO_LANE, request_id: str = "") -> Grant:
        """Like ``acquire``, with the store's clock reading (Redis ``TIME``) of the decision, for measurements."""
        if not isinstance(cost, int) or cost < 1:
            raise ValueError(f"cost must be a positive integer, got {cost!r}")
        if lane == gcra.FIRST_LANE and not request_id:
            request_id = uuid.uuid4().hex
        return self.store.acquire(self.account, self.policy, cost, lane=lane, request_id=request_id)

    def acquire_waiting(
        self,
        cost: int = 1,
        max_wait_ms: int = DEFAULT_INLINE_WAIT_MS,
        sleep: Callable[[float], None] = time.sleep,
        *,
        lane: str = gcra.NO_LANE,
    ) -> Decision:
        """Acquire, sleeping inline through refusals while the total wait stays within ``max_wait_ms``.

        Several workers race for each slot, so one wait may be followed by another;
        the budget bounds the total. A longer wait (a cooldown, a crowd) is returned
        unslept for the task to re-enqueue itself.

        Args:
            cost: requests about to be sent.
            max_wait_ms: the most time slept inline in total.
            sleep: the sleeping function (a fake clock's in tests).
            lane: the request's lane (``acquire``); a first-lane request keeps one id over its retries.

        Returns:
            An allowed decision, or the refusal whose wait did not fit in the budget.
        """
        budget_ms = max_wait_ms
        request_id = uuid.uuid4().hex if lane == gcra.FIRST_LANE else ""
        while True:
            decision = self.acquire(cost, lane=lane, request_id=request_id)
            if decision.allowed or decision.retry_after_ms > budget_ms:
                return decision
            budget_ms -= decision.retry_after_ms
            sleep(decision.retry_after_ms / 1000)

    def report_429(self, retry_after_s: float | None = None) -> int:
        """Record a 429 that got through: start the shared cooldown, lower the rate (once per episode).

        Args:
            retry_after_s: the server's wait, when it gave one; else exponential backoff with jitter.

        Returns:
            The cooldown left, in milliseconds: how long every worker of this account now waits.
        """
        server_wait_ms: int | None = None
        if retry_after_s is not None and math.isfinite(retry_after_s) and retry_after_s > 0:
            server_wait_ms = min(math.ceil(retry_after_s * 1000), self.policy.max_server_wait_ms)
        cooldown = self.store.report_429(self.account, self.policy, server_wait_ms, gcra.jitter_ppm(self._rng))
        _log.warning(
            "rate_limited",
            account=self.account,
            cooldown_ms=cooldown.wait_ms,
            strikes=cooldown.strikes,
            rate_factor=cooldown.factor_ppm / gcra.PPM,
            server_wait_ms=server_wait_ms,
        )
        return cooldown.wait_ms

    def has_room(self) -> bool:
        """Whether the account has unused budget now: no cooldown, and no grant promised past the next slot.

        Work that is useful but not required (a poll ahead of the fixed schedule) is done only then, so
        it never takes a token that a POST waiting in line would have had.
        """
        state = self.state()
        # A grant moves the bucket one interval ahead of now: one interval is the last grant's own slot.
        return state.cooldown_ms == 0 and state.backlog_ms * 1000 <= self.policy.base_interval_us

    def state(self) -> LimiterState:
        """The account's adaptive factor, cooldown left and consecutive 429 episodes, for ``dropq status``."""
        return self.store.state(self.account, self.policy)
