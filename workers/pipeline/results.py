"""Results in hand (from a poll or a webhook push): keep them and hand the batch to the sink, once."""

from __future__ import annotations

import structlog

from dropq.workers.jobs.batch import Batch
from dropq.workers.metrics.fields import FETCHED_BY_GET, FETCHED_BY_PUSH
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["accept_results"]

_log = structlog.get_logger(__name__)


def accept_results(
    rt: Runtime, batch: Batch, records: list[dict[str, object]], *, partial: bool, polled: bool = False
) -> list[Followup]:
    """Keep a batch's results (from a poll, ``polled``, or a webhook) and hand it to the sink, once."""
    via = FETCHED_BY_GET if polled else FETCHED_BY_PUSH
    if not rt.batches.fetch(batch.batch_id, records, partial=partial, now_ms=rt.now_ms(), via=via):  # type: ignore[arg-type]
        return []
    _log.info("batch_fetched", job_id=batch.job_id, batch_id=batch.batch_id, polls=batch.polls + 1, partial=partial)
    return [followup.sink(batch.batch_id)]
