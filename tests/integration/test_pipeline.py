"""The whole pipeline on real workers, real Redis and the sandbox over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.contacts import make_contacts
from tests.support.pipeline import read_stream, wait_for_job, worker_env
from tests.support.processes import client_app


def test_a_job_accounts_for_every_record(start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path) -> None:
    """Thousands of records with invalid rows and duplicates: every one comes back once, with a status."""
    # Given
    worker = start_worker(worker_env(redis_url, sandbox, tmp_path), concurrency=4)
    contacts = make_contacts(3000, invalid_every=37, duplicate_every=23)
    app = client_app(redis_url)
    # When
    try:
        app.send_task(
            "dropq.enrich",
            kwargs={"contacts": contacts, "job_id": "acct-1", "destinations": ["jsonl", "stream"], "language": "en"},
        ).get(timeout=30)
    finally:
        app.close()
    status = wait_for_job(redis_url, "acct-1")
    # Then
    assert status.received == 3000
    assert status.rejected > 0 and status.duplicates > 0
    assert status.received == status.delivered + status.rejected + status.duplicates + status.failed
    assert status.failed == 0
    lines = [json.loads(line) for line in (tmp_path / "acct-1.jsonl").read_text().splitlines()]
    assert [o["index"] for o in lines] == list(range(3000))
    assert {o["status"] for o in lines} <= {"enriched", "not_found", "rejected", "duplicate"}
    assert sorted(o["index"] for o in read_stream(redis_url, "acct-1")) == list(range(3000))
    for outcome in lines:
        if outcome["record"] is not None:
            assert outcome["record"]["custom_fields"]["crm_id"] == str(outcome["index"])
    stats = sandbox.stats()
    assert stats["duplicate_records_posted"] == 0
    assert stats["batches_received"] == status.batches_submitted == status.batches
    # Every poll's summary line carries the job and the API's request id.
    worker.stop()
    events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    polls = [e for e in events if e.get("event") == "task_finished" and e.get("task_name") == "dropq.poll"]
    assert polls and all(e.get("job_id") == "acct-1" and e.get("request_id") for e in polls)
