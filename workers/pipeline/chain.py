"""Which message drives a batch: the current one, a stale duplicate, or the survivor of a broken chain.

A batch moves through submit and poll messages, one at a time; each carries
the batch's ``seq``, and each transition bumps it, so a duplicate (a
redelivered message whose work was already done) finds an old ``seq`` and
stops. One crash breaks that: a worker killed after a transition but before
it sent the next message leaves only its own, unacknowledged message, which
the broker redelivers later with the old ``seq``. Such a message adopts the
batch when nothing has touched the batch for longer than any live chain
waits between two messages; a live chain always touches it sooner.
"""

from __future__ import annotations

import structlog

from dropq.config.celeryconfig import stall_after_ms
from dropq.workers.jobs.batches import Batch
from dropq.workers.runtime import Runtime

__all__ = ["claim_message"]

_log = structlog.get_logger(__name__)


def claim_message(rt: Runtime, batch: Batch, seq: int) -> int | None:
    """The ``seq`` this message may act with, or None when it is a stale duplicate.

    Touches the batch, so that other messages see this chain alive.
    """
    now_ms = rt.now_ms()
    if batch.seq != seq:
        idle_ms = now_ms - batch.touched_ms
        if batch.touched_ms and idle_ms <= stall_after_ms(rt.settings):
            return None
        _log.warning("chain_adopted", batch_id=batch.batch_id, message_seq=seq, batch_seq=batch.seq, idle_ms=idle_ms)
    rt.batches.touch(batch.batch_id, now_ms)
    return batch.seq
