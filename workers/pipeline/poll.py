"""Poll: look for a submitted batch's results, with backoff; past the maximum age, force them once.

Waiting for a token or for "not ready" re-enqueues the message; it never
counts as an error. Real errors (5xx, timeouts) are counted on the batch and
bounded by the retry schedule.
"""

from __future__ import annotations

import structlog

from dropq.dropcontact.backoff import processing_estimate_s
from dropq.dropcontact.client import FetchState
from dropq.dropcontact.errors import AuthenticationError, DropcontactError, RateLimitedError, TransientError
from dropq.workers.jobs.batch import Batch, BatchState, TransitionRefused
from dropq.workers.limiter import gcra
from dropq.workers.limiter.limiter import DEFAULT_INLINE_WAIT_MS
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.closing import fail_batch
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.pacing import back_to_schedule, next_poll
from dropq.workers.pipeline.results import accept_results
from dropq.workers.pipeline.submit import AUTH_FAILED_REASON
from dropq.workers.runtime import Runtime
from dropq.workers.webhooks import take_early_push

__all__ = ["poll_batch"]

_log = structlog.get_logger(__name__)


def poll_batch(rt: Runtime, batch_id: str, seq: int, *, early: bool = False) -> list[Followup]:
    """Run the poll stage for one batch message (``early``: a look ahead of the schedule).

    Returns:
        The next poll, or the sink once results are in, or the deliveries of a failed batch.
    """
    batch = rt.batches.get(batch_id)
    if batch is None or batch.state is not BatchState.SUBMITTED:
        return []
    structlog.contextvars.bind_contextvars(job_id=batch.job_id, request_id=batch.request_id)
    if batch.seq != seq:
        # A stale copy (its step was done, or re-sent by the sweep and done): nothing to do.
        return []
    if not batch.request_id:
        # Submitted by a push adopted for a POST in doubt, then a crash before its results were kept.
        return take_early_push(rt, batch_id)
    age_s = max(0.0, (rt.now_ms() - batch.submitted_ms) / 1000)
    interactive = batch.lane == gcra.FIRST_LANE
    # A look the schedule planned (it may complete a batch), or an interactive job's: the first lane. A bulk
    # job's early look waits in the bulk line with the backfill's POSTs (first come), each told its own time;
    # told a time past its scheduled look, it goes back to the schedule (the first lane).
    bulk_early = early and not interactive
    token = rt.limiter.acquire_waiting(
        1,
        max_wait_ms=DEFAULT_INLINE_WAIT_MS,
        lane=gcra.BULK_LANE if bulk_early else gcra.FIRST_LANE,
        request_id=f"get:{batch_id}:{seq}",
    )
    if not token.allowed:
        if bulk_early:
            scheduled = back_to_schedule(rt, batch_id, seq, batch.polls, age_s - batch.last_look_s)
            if token.retry_after_ms / 1000 >= scheduled.countdown_s:
                return [scheduled]
        return [followup.poll(batch_id, seq, token.retry_after_ms / 1000, early=bulk_early)]
    # The token may have been waited for: the batch's age at the look.
    age_s = max(0.0, (rt.now_ms() - batch.submitted_ms) / 1000)
    force = rt.poll_schedule.is_past_max_age(age_s)
    try:
        result = rt.client.fetch_results(batch.request_id, force=force)
    except RateLimitedError as exc:
        wait_ms = rt.limiter.report_429(exc.retry_after_s)
        return [followup.poll(batch_id, seq, wait_ms / 1000)]
    except AuthenticationError:
        for job_id in set(batch.job_ids):
            rt.ledger.set_fatal(job_id, AUTH_FAILED_REASON)
        return fail_batch(rt, batch, AUTH_FAILED_REASON)
    except DropcontactError as exc:
        return _on_error(rt, batch, seq, exc)
    if result.credits_left is not None:
        rt.credits.record_balance(result.credits_left)
    if result.state is FetchState.READY and not force and batch.last_look_s > 0:
        # Only a batch seen unready first says when it became ready (between the two looks); a first look
        # that finds it ready (late polls at saturation, a webhook's safety poll) says only "before".
        rt.processing.record(batch.count, processing_estimate_s(batch.last_look_s, age_s))
    if result.state is FetchState.READY or (force and result.state is FetchState.IN_PROGRESS):
        return accept_results(rt, batch, result.records, partial=result.state is not FetchState.READY, polled=True)
    if force:
        # Even forced, nothing: the API does not know this request (expired, or lost on its side).
        return fail_batch(rt, batch, f"no result from the API {age_s:.0f}s after submit (request {batch.request_id})")
    polls = batch.polls + 1
    looked_ms = batch.submitted_ms + int(age_s * 1000)
    try:
        # An answer ends a run of errors: only consecutive errors count against the retries.
        next_seq = rt.batches.transition(
            batch_id, (BatchState.SUBMITTED,), seq=seq, bump=True, polls=polls, errors=0, looked_ms=looked_ms
        )
    except TransitionRefused:
        return []
    return [next_poll(rt, batch_id, next_seq, batch.count, polls, age_s, interactive=interactive)]


def _on_error(rt: Runtime, batch: Batch, seq: int, exc: DropcontactError) -> list[Followup]:
    errors = batch.errors + 1
    if not isinstance(exc, TransientError) or rt.retry_schedule.is_exhausted(errors):
        return fail_batch(rt, batch, f"gave up fetching results after {errors} errors; last: {exc}")
    try:
        next_seq = rt.batches.transition(batch.batch_id, (BatchState.SUBMITTED,), seq=seq, bump=True, errors=errors)
    except TransitionRefused:
        return []
    _log.warning("poll_error", job_id=batch.job_id, batch_id=batch.batch_id, error=str(exc), errors=errors)
    return [followup.poll(batch.batch_id, next_seq, rt.retry_schedule.delay_s(errors, rt.rng))]
