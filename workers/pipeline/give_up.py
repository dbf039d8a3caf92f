"""The last resort: a stage task failed with an unexpected error (a bug, corrupt state).

Celery acknowledges a failed task, so its chain would stop there and the job
would never finish. Instead the batch is failed with the error as its reason
(its records count as ``failed``), or the delivery is counted as given up, so
the job still finishes and says what went wrong.
"""

from __future__ import annotations

from typing import Any

import structlog

from dropq.workers.jobs.batches import OPEN_STATES
from dropq.workers.pipeline.closing import fail_batch
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["give_up"]

_log = structlog.get_logger(__name__)

_BATCH_TASKS = ("dropq.submit", "dropq.poll", "dropq.sink")


def give_up(rt: Runtime, task_name: str, kwargs: dict[str, Any], exc: BaseException) -> list[Followup]:
    """Close what the failed task was working on, with the error as the reason.

    Returns:
        The deliveries of a failed batch, or the finish check.
    """
    reason = f"internal error in {task_name}: {type(exc).__name__}: {exc}"
    _log.error("task_gave_up", task=task_name, error=type(exc).__name__, reason=reason)
    if task_name in _BATCH_TASKS and isinstance(kwargs.get("batch_id"), str):
        batch = rt.batches.get(kwargs["batch_id"])
        if batch is not None and batch.state in OPEN_STATES:
            return fail_batch(rt, batch, reason)
    if task_name == "dropq.deliver" and all(isinstance(kwargs.get(k), str) for k in ("job_id", "unit_id")):
        rt.outcomes.mark_delivered(kwargs["job_id"], kwargs["unit_id"], str(kwargs.get("destination")), gave_up=True)
        return finish_if_complete(rt, kwargs["job_id"])
    return []
