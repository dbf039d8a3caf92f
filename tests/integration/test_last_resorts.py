"""Last resorts: a stage failing on corrupt state closes its batch; a batch whose messages were lost is swept back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from dropq.workers import keys
from dropq.workers.jobs.batch import BatchState, SegmentCommit
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.ledger import JobLedger
from dropq.workers.jobs.options import JobOptions
from dropq.workers.jobs.watchdog import Watchdog
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app


def test_a_sink_failing_on_corrupt_results_fails_the_batch_with_the_error(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Results that are not JSON: the batch's records are failed with the error, and the job finishes."""
    # Given: a job whose only batch has results, corrupted in Redis
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ledger, batches = JobLedger(client, 600), BatchStore(client, 600, Watchdog(client, 60_000, 600))
    ledger.open("corrupt-1", JobOptions(destinations=("jsonl",)), now_ms=1)
    ledger.register_part("corrupt-1", "0", final=True)
    records = [{"first_name": "Ada", "website": "acme.example", "custom_fields": {"dropq_ref": str(i)}} for i in (0, 1)]
    segment = SegmentCommit("corrupt-1", "0/0", "corrupt-1/0/0", records, received=2, rejected=0, duplicates=0,
                            outcomes=[])  # fmt: skip
    batches.commit_segment(segment, destinations=["jsonl"], now_ms=1)
    ledger.mark_part_produced("corrupt-1", "0", 0, 2)
    batches.transition("corrupt-1/0/0", (BatchState.PENDING,), to=BatchState.FETCHED, request_id="r1")
    client.set(keys.batch_results_key("corrupt-1/0/0"), "{not json")
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    # When
    app = client_app(redis_url)
    try:
        app.send_task("dropq.sink", kwargs={"batch_id": "corrupt-1/0/0"}, queue="dropq.sink")
    finally:
        app.close()
    status = wait_for_job(redis_url, "corrupt-1", timeout_s=30)
    # Then
    assert status.failed == 2 and status.received == 2
    outcomes = [json.loads(line) for line in (tmp_path / "corrupt-1.jsonl").read_text().splitlines()]
    assert [o["status"] for o in outcomes] == ["failed", "failed"]
    assert outcomes[0]["reason"].startswith("internal error in dropq.sink: JSONDecodeError")
    client.close()


def test_a_batch_whose_messages_were_lost_is_resumed_by_the_sweep(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A committed batch with no message at all (its submit lost): a worker's sweep resumes it and the job ends."""
    # Given: a job with one batch, committed long ago, and no message for it anywhere
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ledger, batches = JobLedger(client, 600), BatchStore(client, 600, Watchdog(client, 60_000, 600))
    ledger.open("lost-1", JobOptions(destinations=("jsonl",)), now_ms=1)
    ledger.register_part("lost-1", "0", final=True)
    records = [{"first_name": "Ada", "last_name": "Lovelace", "website": "acme.example",
                "custom_fields": {"dropq_ref": "0"}}]  # fmt: skip
    segment = SegmentCommit("lost-1", "0/0", "lost-1/0/0", records, received=1, rejected=0, duplicates=0, outcomes=[])
    batches.commit_segment(segment, destinations=["jsonl"], now_ms=1)
    ledger.mark_part_produced("lost-1", "0", 0, 1)
    client.close()
    # When: a worker (its commit's watchdog deadline passed long ago: the sweep finds the step overdue)
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    status = wait_for_job(redis_url, "lost-1", timeout_s=40)
    # Then
    assert status.delivered == 1 and status.failed == 0
    assert sandbox.stats()["batches_received"] == 1
