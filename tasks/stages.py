"""The internal stage tasks: each turns its JSON arguments into a stage call and sends what follows.

Their arguments are ids only; contact data stays in Redis (or is hidden from
Flower with ``kwargsrepr``).
"""

from __future__ import annotations

from typing import Any

from dropq.tasks._send import STAGE_TASK, send, send_all
from dropq.workers.app import app
from dropq.workers.logs import bind_task_context
from dropq.workers.pipeline.deliver import deliver_unit
from dropq.workers.pipeline.finish import finish_job
from dropq.workers.pipeline.poll import poll_batch
from dropq.workers.pipeline.produce import produce_parked
from dropq.workers.pipeline.sink import sink_batch
from dropq.workers.pipeline.submit import submit_batch
from dropq.workers.runtime import get_runtime

__all__ = ["produce", "submit", "poll", "sink", "deliver", "finish"]


@app.task(name="dropq.produce", **STAGE_TASK)
def produce(job_id: str, offset: int, checked_through: int | None = None) -> None:
    """Validate, de-duplicate and batch an input part parked until its turn."""
    bind_task_context(job_id=job_id, part_id=str(offset))
    send_all(produce_parked(get_runtime(), job_id, offset, checked_through))


@app.task(name="dropq.submit", **STAGE_TASK)
def submit(batch_id: str, seq: int) -> None:
    """POST a batch at most once."""
    bind_task_context(batch_id=batch_id)
    send_all(submit_batch(get_runtime(), batch_id, seq))


@app.task(name="dropq.poll", **STAGE_TASK)
def poll(batch_id: str, seq: int, early: bool = False) -> None:
    """Look for a batch's results (an early look is skipped when the budget has no room left)."""
    bind_task_context(batch_id=batch_id)
    send_all(poll_batch(get_runtime(), batch_id, seq, early=early))


@app.task(name="dropq.sink", **STAGE_TASK)
def sink(batch_id: str) -> None:
    """Join a batch's results and fan them out."""
    bind_task_context(batch_id=batch_id)
    send_all(sink_batch(get_runtime(), batch_id))


@app.task(name="dropq.deliver", **STAGE_TASK)
def deliver(job_id: str, unit_id: str, destination: str, attempt: int = 0) -> None:
    """Write one unit of outcomes to one destination."""
    bind_task_context(job_id=job_id, destination=destination)
    send_all(deliver_unit(get_runtime(), job_id, unit_id, destination, attempt))


@app.task(name="dropq.finish", bind=True, **STAGE_TASK)
def finish(self: Any, job_id: str) -> None:
    """Finish and announce a complete job, once."""
    bind_task_context(job_id=job_id)
    finish_job(get_runtime(), job_id, str(self.request.id), send)
