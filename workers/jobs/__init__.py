"""Job state in Redis: the ledger, the batch state machine and the outcomes waiting for delivery."""

from __future__ import annotations

from dropq.workers.jobs.batch import Batch, BatchState
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from dropq.workers.jobs.options import CallbackSpec, JobOptions, JobOptionsError

__all__ = [
    "Batch",
    "BatchState",
    "BatchStore",
    "CallbackSpec",
    "JobLedger",
    "JobOptions",
    "JobOptionsError",
    "JobStatus",
]
