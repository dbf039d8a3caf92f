"""Results in hand (from a poll or a webhook push): keep them and hand the batch to the sink, once."""

from __future__ import annotations

import structlog

from workers.jobs.batches import Batch, BatchState, TransitionRefused
from workers.pipeline import followup
from workers.pipeline.followup import Followup
from workers.runtime import Runtime

__all__ = ["accept_results"]

_log = structlog.get_logger(__name__)


def accept_results(rt: Runtime, batch: Batch, records: list[dict[str, object]], *, partial: bool) -> list[Followup]:
    """Keep a batch's results (from a poll or a webhook) and hand it to the sink, once."""
    rt.batches.store_results(batch.batch_id, records)  # type: ignore[arg-type]
    try:
        rt.batches.transition(
            batch.batch_id,
            (BatchState.SUBMITTED,),
            to=BatchState.FETCHED,
            bump=True,
            partial=1 if partial else 0,
            fetched_ms=rt.now_ms(),
        )
    except TransitionRefused:
        return []
    _log.info("batch_fetched", job_id=batch.job_id, batch_id=batch.batch_id, polls=batch.polls + 1, partial=partial)
    return [followup.sink(batch.batch_id)]
