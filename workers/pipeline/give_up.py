"""The last resort: a task failed with an unexpected error (a bug, corrupt state).

Celery acknowledges a failed task, so its chain would stop there and the job
would never finish. Instead what the task held is closed with the error as
its reason: a batch is failed (its records count as ``failed``), a delivery
is counted as given up, a part's records that were not committed yet are
failed, and a finisher hands the job back for the next finish check.
"""

from __future__ import annotations

from typing import Any

import structlog

from dropq.workers import keys
from dropq.workers.jobs.batch import BatchState
from dropq.workers.jobs.parked import ParkedParts
from dropq.workers.pipeline.closing import fail_batch
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.produce import fail_part
from dropq.workers.runtime import Runtime

__all__ = ["give_up", "give_up_part"]

_log = structlog.get_logger(__name__)

# The states each batch task owns: it fails a batch only in these (one that moved on is another's).
_OWNED_STATES = {
    "dropq.submit": (BatchState.PENDING, BatchState.POSTING),
    "dropq.poll": (BatchState.SUBMITTED,),
    "dropq.sink": (BatchState.FETCHED,),
}


def _reason(task_name: str, exc: BaseException) -> str:
    return f"internal error in {task_name}: {type(exc).__name__}: {exc}"


def give_up(rt: Runtime, task_name: str, kwargs: dict[str, Any], exc: BaseException, task_id: str) -> list[Followup]:
    """Close what the failed stage task was working on, with the error as the reason.

    Returns:
        The deliveries of what was failed, or the finish check.
    """
    reason = _reason(task_name, exc)
    _log.error("task_gave_up", task=task_name, error=type(exc).__name__, reason=reason)
    if task_name in _OWNED_STATES and isinstance(kwargs.get("batch_id"), str):
        batch = rt.batches.get(kwargs["batch_id"])
        if batch is not None and batch.state in _OWNED_STATES[task_name]:
            return fail_batch(rt, batch, reason)
    if task_name == "dropq.deliver" and all(isinstance(kwargs.get(k), str) for k in ("job_id", "unit_id")):
        rt.outcomes.mark_delivered(kwargs["job_id"], kwargs["unit_id"], str(kwargs.get("destination")), gave_up=True)
        return finish_if_complete(rt, kwargs["job_id"])
    if task_name == "dropq.produce" and isinstance(kwargs.get("job_id"), str) and isinstance(kwargs.get("offset"), int):
        part = ParkedParts(rt.redis, rt.settings.job_ttl_s).load(kwargs["job_id"], kwargs["offset"])
        if part is not None and not _is_produced(rt, kwargs["job_id"], kwargs["offset"], len(part.contacts)):
            return fail_part(rt, kwargs["job_id"], part.part_id, kwargs["offset"], part.contacts, reason)
    if task_name == "dropq.finish" and isinstance(kwargs.get("job_id"), str):
        # Handed back: the sweep's next finish check sends a new finisher.
        rt.ledger.release_finish(kwargs["job_id"], task_id, rt.now_ms())
    return []


def _is_produced(rt: Runtime, job_id: str, offset: int, count: int) -> bool:
    """Whether the part was marked produced (its failure came after: nothing of it is failed)."""
    return rt.redis.zscore(keys.job_produced_parts_key(job_id), f"{offset}:{offset + count}") is not None


def give_up_part(rt: Runtime, job_id: str, offset: int, contacts: list[Any], exc: BaseException) -> list[Followup]:
    """``dropq.enrich`` failed on a bug after it registered its part: fail the part's records not yet committed.

    Nothing happens for a part that was never registered (the call was refused before anything was stored)
    or that is produced already.
    """
    part_id = str(offset)
    if not rt.redis.sismember(keys.job_parts_key(job_id), part_id) or _is_produced(rt, job_id, offset, len(contacts)):
        return []
    reason = _reason("dropq.enrich", exc)
    _log.error("task_gave_up", task="dropq.enrich", error=type(exc).__name__, reason=reason)
    return fail_part(rt, job_id, part_id, offset, contacts, reason)
