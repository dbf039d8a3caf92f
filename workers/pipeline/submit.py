"""Submit: POST a batch at most once, then schedule its first poll.

The order of events is what keeps credits safe:

1. a message whose ``seq`` is not the batch's is stale and does nothing;
2. credits and the shared limiter are asked first; waiting re-enqueues the
   message (it never counts as a failure);
3. the claim moves the batch to ``posting`` with a lease, atomically;
4. the POST; the ``request_id`` is written the moment the answer arrives.

Two windows remain where a batch can be POSTed twice, both counted in the
job's ``resubmitted``: a worker killed between 3 and the end of 4 leaves
``posting`` behind, and the next message re-POSTs once the lease runs out;
and a POST whose answer was lost after it reached the API (a read timeout, a
reset connection, a gateway's 502/504/524) is marked in doubt and sent again.
"""

from __future__ import annotations

import contextlib

import structlog

from dropq.config.settings import MISSING_API_KEY_REASON
from dropq.dropcontact.errors import (
    AuthenticationError,
    DropcontactError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    RateLimitedError,
    ServerError,
    TransientError,
)
from dropq.workers.jobs.batch import Batch, BatchState, TransitionRefused
from dropq.workers.limiter import gcra
from dropq.workers.limiter.gcra import Decision
from dropq.workers.limiter.limiter import DEFAULT_INLINE_WAIT_MS
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.closing import fail_batch
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.pacing import next_poll
from dropq.workers.pipeline.shared import is_poolable, options_of, send_alone, share_or_send
from dropq.workers.runtime import Runtime
from dropq.workers.webhooks import adopt_pushed_results, callback_url_for, take_early_push

__all__ = ["submit_batch", "AUTH_FAILED_REASON"]

_log = structlog.get_logger(__name__)

AUTH_FAILED_REASON = "the API refused the access token (401): check DROPCONTACT_API_KEY"
# Answers of the gateway in front of the API after the request reached it: the origin may have taken it.
_GATEWAY_STATUSES = (502, 504, 524)
# The lease covers the POST's connect and read timeouts plus this margin.
LEASE_MARGIN_S = 10.0


def _requeue(batch: Batch, decision: Decision) -> list[Followup]:
    return [followup.submit(batch.batch_id, batch.seq, decision.retry_after_ms / 1000)]


def submit_batch(rt: Runtime, batch_id: str, seq: int) -> list[Followup]:
    """Run the submit stage for one batch message.

    Returns:
        The messages to send next (a poll, a re-enqueued submit, deliveries of a failed batch).
    """
    batch = rt.batches.get(batch_id)
    if batch is None or batch.state not in (BatchState.PENDING, BatchState.POSTING):
        return []
    structlog.contextvars.bind_contextvars(job_id=batch.job_id)
    if batch.seq != seq:
        # A stale copy (its step was done, or re-sent by the sweep and done): nothing to do.
        return []
    job = None if batch.is_shared else rt.ledger.read(batch.job_id)
    if job is not None and job.fatal_reason:
        return fail_batch(rt, batch, job.fatal_reason)
    if rt.settings.is_missing_api_key:
        # Every request would be refused (401): the job fails once, with the reason to fix, and nothing is sent.
        for job_id in set(batch.job_ids):
            rt.ledger.set_fatal(job_id, MISSING_API_KEY_REASON)
        return fail_batch(rt, batch, MISSING_API_KEY_REASON)
    shared: list[Followup] = []
    if is_poolable(rt, batch):
        # Not full: it waits to share a POST with other jobs' batches, unless a seal leaves it alone.
        pooled = share_or_send(rt, batch)
        if not pooled.send_now:
            return pooled.followups
        shared = pooled.followups
    return shared + _post(rt, batch)


def _post(rt: Runtime, batch: Batch) -> list[Followup]:
    """Ask the credits and the limiter, claim the batch, POST it, and schedule its first poll."""
    batch_id, seq = batch.batch_id, batch.seq
    now_ms = rt.now_ms()
    if batch.state is BatchState.POSTING and batch.lease_until_ms > now_ms:
        # Another worker is inside its POST right now; look again once its lease is over.
        return [followup.submit(batch_id, seq, (batch.lease_until_ms - now_ms) / 1000)]
    if rt.settings.webhook_url and (doubt_since_ms := _in_doubt_since(batch)):
        # The last POST may have reached the API: its push (to this batch's own URL) would say so.
        pushed = adopt_pushed_results(rt, batch)
        if pushed is not None:
            return pushed
        wait_ms = doubt_since_ms + int(rt.settings.webhook_safety_poll_s * 1000) - now_ms
        if wait_ms > 0:
            return [followup.submit(batch_id, seq, wait_ms / 1000)]

    # The options, the callback and the credits before the slot: once it opens, the POST must follow at once
    # (the limiter's budget for the time between a slot and the request's arrival is about 26 ms).
    siren, language = options_of(rt, batch)
    callback_url = callback_url_for(rt, batch_id)
    credit = rt.credits.check_submit(batch.count)
    if not credit.allowed and rt.credits.is_paused() and rt.credits.should_recheck():
        _recheck_balance(rt)
        credit = rt.credits.check_submit(batch.count)
    if not credit.allowed:
        return _requeue(batch, credit)
    # The slot first (in the limiter's line by its batch and step: re-enqueued with the wait it is told, it
    # keeps its place), then the body and the claim while the slot comes, then the POST at the slot: a
    # refused POST costs no body, and nothing stands between the slot and the send (a claim after the
    # slot, behind the interpreter lock of 64 threads, made 1% of POSTs 55 ms or more late, and late
    # sends are what a strict server's window counts as one too many). An interactive job's POST takes
    # the first lane: a backfill's crowd of POSTs does not stand before it.
    reservation = rt.limiter.reserve(
        1, max_wait_ms=DEFAULT_INLINE_WAIT_MS, lane=batch.lane, request_id=f"post:{batch_id}:{batch.seq}"
    )
    if not reservation.decision.allowed:
        rt.credits.release(batch.count)
        return _requeue(batch, reservation.decision)
    try:
        body = rt.client.submit_body(
            rt.batches.records(batch_id), siren=siren, language=language, custom_callback_url=callback_url
        )
    except ValueError:
        # No records (a batch whose records are gone): the task's last resort closes it.
        rt.credits.release(batch.count)
        raise
    lease_s = rt.settings.connect_timeout_s + rt.settings.read_timeout_s + LEASE_MARGIN_S
    try:
        # No bump: if this worker dies inside the POST, this very message comes back and is still current.
        # The lease is checked in the script: a second message with this seq can't claim during our POST.
        now_ms = rt.now_ms()
        claimed, in_doubt = rt.batches.claim(batch_id, seq, now_ms, now_ms + int(lease_s * 1000))
    except TransitionRefused:
        rt.credits.release(batch.count)
        return []

    # Sent only on time for its slot (250 records read and encoded behind the interpreter lock of 64
    # threads can take longer than the limiter's 26 ms budget for lateness): else asked for again, and
    # the claim given back with the doubt it found, so that the next claim is not taken for a re-POST.
    def give_back() -> None:
        rt.credits.release(batch.count)
        with contextlib.suppress(TransitionRefused):
            rt.batches.transition(
                batch_id, (BatchState.POSTING,), seq=claimed, to=BatchState.PENDING, lease_until_ms=0,
                in_doubt=int(in_doubt),
            )  # fmt: skip

    try:
        token = rt.limiter.hold(reservation)
    except BaseException:
        # Redis gone during the wait: nothing was sent, so no later claim may take this one for a re-POST.
        with contextlib.suppress(Exception):
            give_back()
        raise
    if not token.allowed:
        give_back()
        return _requeue(batch, token)
    if in_doubt:
        # Counted before it is sent, each time: a batch in doubt twice, or whose doubtful POST was
        # followed by a refused one, is never under-counted (a POST that then fails to connect is
        # counted all the same: `resubmitted` is an upper bound of the batches the API got twice).
        for job_id in batch.job_ids:
            rt.ledger.add(job_id, resubmitted=1)
    try:
        answer = rt.client.submit_encoded(body)
    except DropcontactError as exc:
        return _on_error(rt, rt.batches.get(batch_id) or batch, claimed, exc)
    structlog.contextvars.bind_contextvars(request_id=answer.request_id)
    # The window closes here: from now on a redelivered message finds the request id.
    try:
        polled = rt.batches.transition(
            batch_id,
            (BatchState.POSTING,),
            seq=claimed,
            to=BatchState.SUBMITTED,
            bump=True,
            request_id=answer.request_id,
            submitted_ms=rt.now_ms(),
            errors=0,
        )
    except TransitionRefused:
        # This POST outlived its lease and another claim (counted in resubmitted) took the batch on:
        # its request carries the batch now; this answer is left.
        _log.warning("post_outlived_its_lease", job_id=batch.job_id, batch_id=batch_id, request_id=answer.request_id)
        return []
    if answer.credits_left is not None:
        rt.credits.record_balance(answer.credits_left)
    for job_id in batch.job_ids:
        rt.ledger.add(job_id, batches_submitted=1)
    _log.info(
        "batch_submitted",
        job_id=batch.job_id,
        batch_id=batch_id,
        request_id=answer.request_id,
        records=batch.count,
        in_doubt=in_doubt,
    )
    if rt.settings.webhook_url:
        # Pushes bring the results; the first poll only catches a lost one.
        first_poll_s = max(rt.settings.webhook_safety_poll_s, rt.poll_schedule.delay_s(0, rt.rng))
        return [followup.poll(batch_id, polled, first_poll_s), *take_early_push(rt, batch_id)]
    return [next_poll(rt, batch_id, polled, batch.count, 0, 0.0, interactive=batch.lane == gcra.FIRST_LANE)]


def _in_doubt_since(batch: Batch) -> int:
    """When the batch's last POST went in doubt (its answer lost, or its worker died inside it), else 0."""
    if batch.in_doubt:
        return batch.doubt_ms
    if batch.state is BatchState.POSTING:
        return batch.lease_until_ms
    return 0


def _recheck_balance(rt: Runtime) -> None:
    token = rt.limiter.acquire_waiting(1, max_wait_ms=DEFAULT_INLINE_WAIT_MS)
    if not token.allowed:
        return
    try:
        rt.credits.record_balance(rt.client.get_credits())
    except DropcontactError as exc:
        _log.warning("credits_recheck_failed", error=type(exc).__name__, reason=str(exc))


def _on_error(rt: Runtime, batch: Batch, seq: int, exc: DropcontactError) -> list[Followup]:
    """Map an API error onto what happens to the batch next."""
    rt.credits.release(batch.count)
    if isinstance(exc, AuthenticationError):
        for job_id in set(batch.job_ids):
            rt.ledger.set_fatal(job_id, AUTH_FAILED_REASON)
        _log.error("auth_failed", job_id=batch.job_id, batch_id=batch.batch_id, reason=AUTH_FAILED_REASON)
        return fail_batch(rt, batch, AUTH_FAILED_REASON)
    if isinstance(exc, InvalidRequestError):
        return _on_invalid(rt, batch, seq, exc)
    if isinstance(exc, InsufficientCreditsError):
        rt.credits.pause_for_credits(batch.count)
        back = _back_to_pending(rt, batch, seq)
        return [followup.submit(batch.batch_id, back, rt.settings.credit_recheck_s)] if back is not None else []
    if isinstance(exc, RateLimitedError):
        wait_ms = rt.limiter.report_429(exc.retry_after_s)
        back = _back_to_pending(rt, batch, seq)
        return [followup.submit(batch.batch_id, back, wait_ms / 1000)] if back is not None else []
    # Transient (5xx, 524, timeouts, connection errors) or a response we cannot read: bounded retries.
    errors = batch.errors + 1
    reason = f"gave up after {errors} errors; last: {exc}"
    if not isinstance(exc, TransientError) or rt.retry_schedule.is_exhausted(errors):
        return fail_batch(rt, batch, reason if isinstance(exc, TransientError) else str(exc))
    # The API has no idempotency key: a POST whose answer was lost may have been taken (and charged).
    # It is sent again, so that its contacts come back, and the re-POST is counted in `resubmitted`.
    doubt = {"in_doubt": 1, "doubt_ms": rt.now_ms()} if _may_have_arrived(exc) else {"in_doubt": 0}
    back = _back_to_pending(rt, batch, seq, errors=errors, **doubt)
    delay = rt.retry_schedule.delay_s(errors, rt.rng)
    if doubt["in_doubt"] and rt.settings.webhook_url and back is not None:
        # Its push, if it was taken, comes within the API's worst case: wait for it before sending it again
        # (the receiver wakes this submit when it comes; it may have come already, during the POST).
        moved_on = rt.batches.get(batch.batch_id)
        pushed = adopt_pushed_results(rt, moved_on) if moved_on is not None else None
        if pushed is not None:
            return pushed
        delay = max(delay, rt.settings.webhook_safety_poll_s)
    _log.warning("submit_error", job_id=batch.job_id, batch_id=batch.batch_id, error=str(exc), errors=errors)
    return [followup.submit(batch.batch_id, back, delay)] if back is not None else []


def _may_have_arrived(exc: DropcontactError) -> bool:
    """Whether a failed POST may still have been accepted by the API."""
    if isinstance(exc, NetworkError):
        return exc.may_have_arrived
    # A gateway that timed out or lost the origin's answer (502, 504, 524): the origin may have accepted it.
    return isinstance(exc, ServerError) and exc.status in _GATEWAY_STATUSES


def _back_to_pending(rt: Runtime, batch: Batch, seq: int, **fields: int) -> int | None:
    # The POST was answered (refused): it did not go through, so the batch can be claimed again.
    try:
        return rt.batches.transition(
            batch.batch_id, (BatchState.POSTING,), seq=seq, to=BatchState.PENDING, bump=True, **fields
        )
    except TransitionRefused:
        return None


def _on_invalid(rt: Runtime, batch: Batch, seq: int, exc: InvalidRequestError) -> list[Followup]:
    """A 400: bisect the batch until the refused record stands alone, then fail it with the API's reason.

    A shared request is not bisected: each batch it carries is sent alone, and bisects itself if it holds
    the refused record (the others go through at once).
    """
    if batch.is_shared:
        return send_alone(rt, batch, seq)
    records = rt.batches.records(batch.batch_id)
    reason = f"the API refused the record: {exc.reason or exc}"
    if len(records) <= 1:
        return fail_batch(rt, batch, reason)
    half = len(records) // 2
    if not rt.batches.split(batch, seq, records[:half], records[half:], rt.now_ms()):
        return []
    _log.warning("batch_split", job_id=batch.job_id, batch_id=batch.batch_id, reason=exc.reason)
    return [followup.submit(f"{batch.batch_id}.{n}", 0) for n in (0, 1)]
