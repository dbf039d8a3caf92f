"""Read what a schedule left behind from the real parts, for the invariant checker.

Everything read here is indexes, statuses and counters: the outcomes' contact
data is parsed and dropped, never kept in an observation.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis

from dropq.workers import keys
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from tests.soak.invariants import JobObservation
from tests.soak.plan import HTTP_DESTINATION, JobPlan
from tests.soak.receivers import CallbackCounts, OutcomeReceiver

__all__ = ["observe_job", "keys_without_ttl", "read_ledger"]

# The TTL Redis reports for a key that exists and has none.
_NO_TTL = -1
# The ledger TTL given to JobLedger; it only matters for writes, which the soak never makes.
_LEDGER_TTL_S = 3600


def read_ledger(client: redis.Redis, job_id: str) -> JobStatus | None:
    """The job's ledger, or None."""
    return JobLedger(client, _LEDGER_TTL_S).read(job_id)


def _read_jsonl(path: Path) -> tuple[tuple[int, ...] | None, dict[str, int]]:
    if not path.exists():
        return None, {}
    indexes: list[int] = []
    statuses: Counter[str] = Counter()
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            outcome = json.loads(line)
            indexes.append(int(outcome["index"]))
            statuses[str(outcome["status"])] += 1
    return tuple(indexes), dict(statuses)


def _read_stream(client: redis.Redis, job_id: str) -> tuple[int, ...]:
    entries = client.xrange(keys.job_outcomes_key(job_id))
    return tuple(int(json.loads(fields["o"])["index"]) for _, fields in entries)


def observe_job(
    client: redis.Redis,
    job: JobPlan,
    out_dir: Path,
    *,
    finished_status: JobStatus | None,
    receiver: OutcomeReceiver,
    callbacks: CallbackCounts,
) -> JobObservation:
    """Everything the checker needs about one job.

    Args:
        client: Redis (``decode_responses=True``).
        job: the job's plan.
        out_dir: the jsonl destination's directory.
        finished_status: the ledger when the job was first seen finished.
        receiver: the http destination's receiver.
        callbacks: what the callback queue held.
    """
    jsonl_indexes, jsonl_statuses = _read_jsonl(out_dir / f"{job.job_id}.jsonl")
    return JobObservation(
        job_id=job.job_id,
        records=job.records,
        status=read_ledger(client, job.job_id),
        finished_status=finished_status,
        jsonl_indexes=jsonl_indexes,
        jsonl_statuses=jsonl_statuses,
        stream_indexes=_read_stream(client, job.job_id),
        http_counts=receiver.counts(job.job_id) if HTTP_DESTINATION in job.destinations else None,
        callback_counts=dict(callbacks.records.get(job.job_id, {})) if job.has_callback else None,
        on_done=callbacks.on_done.get(job.job_id, 0) if job.has_callback else None,
    )


def keys_without_ttl(client: redis.Redis, pattern: str | None = None) -> tuple[str, ...]:
    """Every key matching ``pattern`` that exists without a TTL."""
    found = []
    for key in client.scan_iter(match=pattern or f"{keys.prefix()}:*", count=1000):
        if client.ttl(key) == _NO_TTL:
            found.append(str(key))
    return tuple(sorted(found))
