"""Sink: join a batch's results back to its records and close it with one outcome per record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from dropq.dropcontact.joining import JoinedRecord, JoinStatus, credits_kept, join_results
from dropq.dropcontact.qualification import EmailResult
from dropq.workers.jobs.batch import BatchState
from dropq.workers.pipeline.cached import settle_questions
from dropq.workers.pipeline.closing import close_batch, first_reason, index_of, redeliver_unit
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.shared import hand_on_results
from dropq.workers.runtime import Runtime

__all__ = ["sink_batch", "outcome_of", "unusable_emails_reason", "UNUSABLE_EMAILS_REASON"]

_log = structlog.get_logger(__name__)

NOT_PROCESSED_REASON = "not processed by the API before the maximum wait (DROPQ_POLL_MAX_AGE_S)"
MISSING_REASON = "the API returned no result for this record"
UNUSABLE_EMAILS_REASON = "no usable email: the API returned only addresses qualified"


def _is_unprocessed(joined: JoinedRecord) -> bool:
    # With forceResults, records not yet processed come back as their input, unchanged.
    return joined.result is not None and not joined.emails and joined.result == joined.input


def outcome_of(job_id: str, joined: JoinedRecord, *, partial: bool) -> dict[str, Any]:
    """The outcome of one joined record."""
    status, reason = str(joined.status), None
    if joined.status is JoinStatus.MISSING:
        status, reason = "failed", MISSING_REASON
    elif partial and _is_unprocessed(joined):
        status, reason = "failed", NOT_PROCESSED_REASON
    elif joined.status is JoinStatus.NOT_FOUND and joined.emails:
        reason = unusable_emails_reason(joined.emails)
    best = joined.best_email
    return {
        "job_id": job_id,
        "index": index_of(joined.input),
        "status": status,
        "reason": reason,
        "record": joined.result if status != "failed" else None,
        "input": joined.input,
        "best_email": best.email if best else None,
        "qualification": best.qualification.raw if best else None,
        "source": "api",
    }


def unusable_emails_reason(emails: Sequence[EmailResult]) -> str:
    """Why a record with addresses is ``not_found``: each was qualified unusable (the qualifications, no address)."""
    qualifications = ", ".join(dict.fromkeys(item.qualification.raw or "(none)" for item in emails))
    return f"{UNUSABLE_EMAILS_REASON}: {qualifications}"


def sink_batch(rt: Runtime, batch_id: str) -> list[Followup]:
    """Run the sink stage for one batch.

    Returns:
        One delivery per destination of the job, and the finish check.
    """
    batch = rt.batches.get(batch_id)
    if batch is None:
        return []
    if batch.is_shared:
        # A shared request has no outcomes of its own: each batch it carries gets its results and sinks.
        return hand_on_results(rt, batch)
    if batch.state in (BatchState.DONE, BatchState.FAILED):
        return redeliver_unit(rt, batch)
    if batch.state is not BatchState.FETCHED:
        return []
    results = rt.batches.results(batch_id) or []
    joined = join_results(rt.batches.records(batch_id), results)
    outcomes = [outcome_of(batch.job_id, j, partial=batch.partial) for j in joined]
    settle_questions(rt, batch.job_id, joined, outcomes, partial=batch.partial)
    followups = close_batch(
        rt,
        batch,
        outcomes,
        allowed=(BatchState.FETCHED,),
        final=BatchState.DONE,
        credits_used=credits_kept(outcomes),
    )
    failed = sum(o["status"] == "failed" for o in outcomes)
    # A batch with failed records is worth a look: a warning with the count and the first reason.
    (_log.warning if failed else _log.info)(
        "batch_delivered",
        job_id=batch.job_id,
        batch_id=batch_id,
        enriched=sum(o["status"] == "enriched" for o in outcomes),
        not_found=sum(o["status"] == "not_found" for o in outcomes),
        failed=failed,
        **({"first_reason": first_reason(outcomes)} if failed else {}),
    )
    return followups
