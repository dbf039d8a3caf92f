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
from dataclasses import dataclass

import structlog

from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import Decision, LimiterPolicy
from dropq.workers.limiter.store import Grant, LimiterState, LimiterStore

__all__ = ["RateLimiter", "Reservation", "DEFAULT_INLINE_WAIT_MS"]

# Waits up to this long are slept inline: shorter than a broker round trip and a countdown's imprecision.
# A longer one is returned for the task to re-enqueue itself with a countdown: waiting, not failing,
# so it never uses the retries that real errors (5xx, timeouts) are allowed.
DEFAULT_INLINE_WAIT_MS = 250

# A slot ``hold`` missed is asked for again inline this many times at most (while the budget lasts).
MISSED_SLOT_ASKS = 3
# How much the estimated offset between the store's clock and the local one may rise per grant.
OFFSET_CREEP_S = 0.0001
# hold() looks for a cooldown begun since the grant this long before the slot (a 429 later than that
# is not seen: the request goes, like those already in flight when the 429 came).
COOLDOWN_LOOK_LEAD_S = 0.02

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``RateLimiter.reserve`` got: a slot (``decision.allowed``) to send at ``send_at``, or a refusal.

    Args:
        decision: the limiter's answer.
        send_at: when the slot opens, on the reserving clock (seconds).
        budget_ms: the inline wait left after the slot's.
        cost, lane, request_id: what was asked, to ask again for a slot ``hold`` missed.
    """

    decision: Decision
    send_at: float = 0.0
    budget_ms: int = 0
    cost: int = 1
    lane: str = gcra.NO_LANE
    request_id: str = ""


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
        # The local clock minus the store's, by the fastest round trip seen (``_local_time_of``).
        self._offset_s: float | None = None

    def acquire(self, cost: int = 1, *, lane: str = gcra.NO_LANE, request_id: str = "") -> Decision:
        """Take ``cost`` tokens now, or say how long to wait (also while a 429 cooldown runs).

        Args:
            cost: requests about to be sent (1 per HTTP request, GET or POST).
            lane: ``gcra.FIRST_LANE`` (an interactive job's request, a poll due): served before bulk requests;
                ``gcra.BULK_LANE`` (a backfill's POSTs): takes the slots no first-lane request waits for.
            request_id: the request's id in its lane's line, the same over its retries; empty: not in line.

        Returns:
            ``Decision(True, 0)`` with the tokens taken, or ``Decision(False, retry_after_ms)``.
        """
        return self.acquire_grant(cost, lane=lane, request_id=request_id).decision

    def acquire_grant(
        self,
        cost: int = 1,
        *,
        lane: str = gcra.NO_LANE,
        request_id: str = "",
        horizon_ms: int = 0,
        missed: bool = False,
    ) -> Grant:
        """Like ``acquire`` (a slot within ``horizon_ms``: ``Decision.delay_ms``), with the store's clock reading.

        ``missed``: the request held a slot and missed it; in line, it asks as one due, not as a newcomer.
        """
        if not isinstance(cost, int) or cost < 1:
            raise ValueError(f"cost must be a positive integer, got {cost!r}")
        return self.store.acquire(
            self.account, self.policy, cost, lane=lane, request_id=request_id, horizon_ms=horizon_ms, missed=missed
        )

    def reserve(
        self,
        cost: int = 1,
        max_wait_ms: int = DEFAULT_INLINE_WAIT_MS,
        sleep: Callable[[float], None] = time.sleep,
        *,
        lane: str = gcra.NO_LANE,
        request_id: str = "",
        clock: Callable[[], float] = time.monotonic,
        missed: bool = False,
    ) -> Reservation:
        """Take a slot that opens within ``max_wait_ms`` (sleeping through short refusals), without waiting for it.

        The slot is reserved (a bulk request's at most ``gcra.BULK_HORIZON_MS`` ahead, so interactive ones
        always find room before it), so a crowd of waiting requests does not race for each slot. A request
        that cannot have one is told its own time in its lane's line: re-enqueued with that countdown and
        the same ``request_id``, it keeps its place. The caller may prepare its request meanwhile, then
        ``hold`` the reservation until its slot.

        Args:
            cost: requests about to be sent.
            max_wait_ms: the most time slept inline in total, the slot's wait included.
            sleep: the sleeping function (a fake clock's in tests).
            lane: the request's lane (``acquire``).
            request_id: the request's id in line, the same over its messages (one is made when empty).
            clock: seconds, monotonic; the slot's time is told on it.
            missed: asking again for a slot this request held and missed (``hold`` does).

        Returns:
            The reservation, or the refusal whose wait did not fit in the budget.
        """
        budget_ms = max_wait_ms
        horizon_ms = min(max_wait_ms, gcra.BULK_HORIZON_MS) if lane == gcra.BULK_LANE else max_wait_ms
        request_id = request_id or uuid.uuid4().hex
        while True:
            horizon = max(0, min(horizon_ms, budget_ms))
            asked = clock()
            grant = self.acquire_grant(cost, lane=lane, request_id=request_id, horizon_ms=horizon, missed=missed)
            decision = grant.decision
            if decision.allowed:
                decided = self._local_time_of(grant.clock_us, asked, clock())
                return Reservation(
                    decision, decided + decision.delay_ms / 1000, budget_ms - decision.delay_ms, cost, lane, request_id
                )
            # Back after the wait, the request needs a horizon that reaches its slot: a line's promise is
            # LINE_LEAD_MS after the return time, any other slot ``horizon_ms``. A budget that would be too
            # short by then gives the refusal now (the caller re-enqueues with it), instead of asking again
            # and again as the horizon shrinks with the budget.
            reach_ms = min(gcra.LINE_LEAD_MS, horizon_ms) if lane in gcra.LANES else horizon_ms
            if decision.retry_after_ms + reach_ms > budget_ms:
                return Reservation(decision)
            budget_ms -= decision.retry_after_ms
            sleep(decision.retry_after_ms / 1000)

    def _local_time_of(self, clock_us: int, asked: float, answered: float) -> float:
        """When the store decided (its clock: ``clock_us``), on the local clock: between the ask and the answer.

        The answer can come back tens of milliseconds after the decision (the reply waits for the interpreter
        lock of 64 threads): a slot counted from the answer is sent that much late, and late sends are what
        a strict server's window counts as one too many. The store's clock is mapped onto the local one by
        the fastest round trip seen (a minimum that creeps up by ``OFFSET_CREEP_S`` a grant, so that it follows
        a clock that moves), and kept within the ask and the answer whatever the clocks do.
        """
        sample = answered - clock_us / 1_000_000
        offset = self._offset_s
        self._offset_s = sample if offset is None else min(sample, offset + OFFSET_CREEP_S)
        return min(max(clock_us / 1_000_000 + self._offset_s, asked), answered)

    def hold(
        self,
        reservation: Reservation,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> Decision:
        """Wait until a reserved slot opens; then go, unless it was missed or a cooldown began meanwhile.

        A slot missed by more than ``gcra.LATE_SEND_MS`` (the thread woke late, or the preparation took that
        long) is not used: sent late, the request would reach the API too close to the next one. While the
        reservation's budget lasts, the request asks again at once as one due in line (the next free slot,
        not the end of the line), up to ``MISSED_SLOT_ASKS`` times.

        Returns:
            ``Decision(True, 0)``: send now. A refusal: the reservation's own, or the one asked again for;
            a cooldown's (``retry_after_ms`` its time left); or ``Decision(False, 0)``, slots missed with
            no budget left to ask again inline (the caller asks again at once, e.g. re-enqueued).
        """
        for attempt in range(MISSED_SLOT_ASKS + 1):
            decision = reservation.decision
            if not decision.allowed:
                return decision
            wait_s = reservation.send_at - clock()
            if decision.delay_ms > 0:
                # Time passes before the slot: a 429 meanwhile starts a cooldown the slot is not exempt from.
                # Looked for a little before the slot, not after it: the look is a round trip, and one that
                # waited for the interpreter lock would make the request late after its lateness was checked.
                # Only a cooldown that reaches past the slot refuses it: a slot granted during a cooldown
                # already lies after its end.
                if wait_s > COOLDOWN_LOOK_LEAD_S:
                    sleep(wait_s - COOLDOWN_LOOK_LEAD_S)
                cooldown_ms = self.state().cooldown_ms
                wait_s = reservation.send_at - clock()
                if cooldown_ms > max(0.0, wait_s * 1000) + gcra.LATE_SEND_MS:
                    return Decision(False, cooldown_ms)
            if wait_s > 0:
                sleep(wait_s)
            late_ms = (clock() - reservation.send_at) * 1000
            if late_ms <= gcra.LATE_SEND_MS:
                return Decision(True, 0)
            _log.debug("limiter_slot_missed", account=self.account, late_ms=round(late_ms))
            budget_ms = reservation.budget_ms - math.ceil(late_ms)
            if budget_ms <= 0 or attempt == MISSED_SLOT_ASKS:
                break
            reservation = self.reserve(
                reservation.cost, budget_ms, sleep, lane=reservation.lane, request_id=reservation.request_id,
                clock=clock, missed=True,
            )  # fmt: skip
        return Decision(False, 0)

    def acquire_waiting(
        self,
        cost: int = 1,
        max_wait_ms: int = DEFAULT_INLINE_WAIT_MS,
        sleep: Callable[[float], None] = time.sleep,
        *,
        lane: str = gcra.NO_LANE,
        request_id: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> Decision:
        """``reserve`` then ``hold``: a slot within ``max_wait_ms``, slept until it opens; else when to come back.

        A slot missed is asked for again while the budget lasts.

        Returns:
            An allowed decision (send now), or the refusal whose wait did not fit in the budget.
        """
        reservation = self.reserve(cost, max_wait_ms, sleep, lane=lane, request_id=request_id, clock=clock)
        return self.hold(reservation, sleep, clock)

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

    def state(self) -> LimiterState:
        """The account's adaptive factor, cooldown left and consecutive 429 episodes, for ``dropq status``."""
        return self.store.state(self.account, self.policy)
