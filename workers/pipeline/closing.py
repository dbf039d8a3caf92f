"""Closing a batch: count its records once and hand its outcomes to the job's destinations."""

from __future__ import annotations

from typing import Any

import structlog

from dropq.dropcontact.records import CORRELATION_FIELD
from dropq.workers.jobs.batch import OPEN_STATES, Batch, BatchState
from dropq.workers.jobs.outcomes import batch_unit_id
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.cached import release_questions
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.shared import close_failed
from dropq.workers.runtime import Runtime

__all__ = ["close_batch", "fail_batch", "first_reason", "index_of", "redeliver_unit"]

_log = structlog.get_logger(__name__)


def index_of(record: dict[str, Any]) -> int:
    """The job input index of a record we sent (from its correlation id, ``{index}.{secret}``)."""
    return int(str(record["custom_fields"][CORRELATION_FIELD]).split(".", 1)[0])


def close_batch(
    rt: Runtime,
    batch: Batch,
    outcomes: list[dict[str, Any]],
    *,
    allowed: tuple[BatchState, ...],
    final: BatchState,
    reason: str = "",
    credits_used: int = 0,
) -> list[Followup]:
    """Close the batch with these outcomes (once) and return the deliveries and the finish check."""
    counts = {status: sum(1 for o in outcomes if o["status"] == status) for status in ("enriched", "not_found")}
    failed = len(outcomes) - counts["enriched"] - counts["not_found"]
    options = rt.ledger.options(batch.job_id)
    destinations = rt.destinations.names_for(options)
    applied = rt.batches.complete(
        batch,
        allowed,
        final,
        enriched=counts["enriched"],
        not_found=counts["not_found"],
        failed=failed,
        outcomes=outcomes,
        destinations=destinations,
        now_ms=rt.now_ms(),
        reason=reason,
        credits_used=credits_used,
    )
    if not applied:
        return redeliver_unit(rt, batch)
    if failed:
        rt.ledger.note_failure(batch.job_id, first_reason(outcomes))
    unit_id = batch_unit_id(batch.batch_id)
    deliveries = [
        followup.deliver(batch.job_id, unit_id, name, inline=rt.destinations.is_local(name)) for name in destinations
    ]
    return deliveries + finish_if_complete(rt, batch.job_id)


def first_reason(outcomes: list[dict[str, Any]]) -> str:
    """The reason of the first failed outcome (empty when none failed)."""
    return next((str(o.get("reason") or "") for o in outcomes if o["status"] == "failed"), "")


def redeliver_unit(rt: Runtime, batch: Batch) -> list[Followup]:
    """After a crash between closing a batch and sending its deliveries: send those not yet counted."""
    unit_id = batch_unit_id(batch.batch_id)
    options = rt.ledger.options(batch.job_id)
    pending = [
        name for name in rt.destinations.names_for(options) if not rt.outcomes.is_delivered(batch.job_id, unit_id, name)
    ]
    if pending and rt.outcomes.load(unit_id) is not None:
        return [followup.deliver(batch.job_id, unit_id, name) for name in pending]
    return finish_if_complete(rt, batch.job_id)


def fail_batch(rt: Runtime, batch: Batch, reason: str) -> list[Followup]:
    """Fail every record of the batch with ``reason`` (counted as failed, delivered as such).

    A shared request fails each batch it still carries, each in its own job, then closes.
    """
    if batch.is_shared:
        followups: list[Followup] = []
        for member in batch.members:
            carried = rt.batches.get(member)
            if carried is not None and carried.state is BatchState.CARRIED and carried.carrier == batch.batch_id:
                followups += fail_batch(rt, carried, reason)
        close_failed(rt, batch, reason)
        return followups
    records = rt.batches.records(batch.batch_id)
    outcomes = [
        {
            "job_id": batch.job_id,
            "index": index_of(record),
            "status": "failed",
            "reason": reason,
            "record": None,
            "input": record,
        }
        for record in records
    ]
    _log.warning("batch_failed", job_id=batch.job_id, batch_id=batch.batch_id, records=len(records), reason=reason)
    # Freed before the close (a fail run again frees them again): a part of another job held behind these
    # questions sends them itself now.
    release_questions(rt, batch.job_id, records)
    return close_batch(rt, batch, outcomes, allowed=OPEN_STATES, final=BatchState.FAILED, reason=reason)
