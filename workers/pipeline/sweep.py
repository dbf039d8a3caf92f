"""The sweep: put back on its way any batch whose chain of messages was lost.

Late acknowledgement and redelivery cover a worker killed mid-task. One case
is left: a stage moved a batch on (say ``posting -> submitted``) and then
could not send the next message, because the broker (the same Redis) went
away at that moment. The retry of that task then finds the batch already
moved and has nothing to do, and the chain ends. The sweep finds such
batches by their silence: a live chain touches its batch at least once per
longest countdown, so a batch untouched for twice that is stalled. It is
resumed from its state (``pending``/``posting`` -> submit, ``submitted`` ->
poll, ``fetched`` -> sink, closed -> the deliveries not yet counted), and a
job whose every part is done gets its finish check. A resumed chain that
turns out to be alive after all only costs a duplicate message, which the
batch's sequence number then stops.
"""

from __future__ import annotations

import structlog

from dropq.config.celeryconfig import stall_after_ms
from dropq.workers.jobs.batches import Batch, BatchState
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.closing import redeliver_unit
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["sweep", "resume_batch"]

_log = structlog.get_logger(__name__)


def resume_batch(rt: Runtime, batch: Batch) -> list[Followup]:
    """The message that carries a batch on from the state it is in."""
    if batch.state in (BatchState.PENDING, BatchState.POSTING):
        return [followup.submit(batch.batch_id, batch.seq)]
    if batch.state is BatchState.SUBMITTED:
        return [followup.poll(batch.batch_id, batch.seq)]
    if batch.state is BatchState.FETCHED:
        return [followup.sink(batch.batch_id)]
    if batch.state in (BatchState.DONE, BatchState.FAILED):
        return redeliver_unit(rt, batch)
    return []


def sweep(rt: Runtime) -> list[Followup]:
    """Resume every stalled batch of every running job, and check each for completion."""
    now_ms = rt.now_ms()
    stalled_ms = stall_after_ms(rt.settings)
    followups: list[Followup] = []
    for job_id in rt.ledger.running_jobs():
        status = rt.ledger.read(job_id)
        if status is None or (status.batches_done == status.batches and not status.deliveries_pending):
            followups.extend(finish_if_complete(rt, job_id))
            continue
        for batch_id in rt.ledger.batch_ids(job_id):
            batch = rt.batches.get(batch_id)
            if batch is None or batch.state is BatchState.SPLIT or now_ms - batch.touched_ms < stalled_ms:
                continue
            if batch.state in (BatchState.DONE, BatchState.FAILED) and not status.deliveries_pending:
                continue
            resumed = resume_batch(rt, batch)
            if batch.state not in (BatchState.DONE, BatchState.FAILED) or resumed:
                _log.warning("batch_resumed", job_id=job_id, batch_id=batch_id, state=str(batch.state))
                rt.batches.touch(batch_id, now_ms)
            followups.extend(resumed)
        followups.extend(finish_if_complete(rt, job_id))
    return followups
