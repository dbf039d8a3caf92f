"""Parts of one job produced in input order, whatever order they arrive in: an early part waits, parked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from dropq.workers import keys
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app


def test_parts_sent_last_first_are_produced_in_input_order(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """The later of two equal records is the duplicate, even when its part arrives first; nothing stays parked."""
    # Given: three parts, the last two holding a copy of a record of the first
    contacts = make_contacts(600, seed=7)
    for index in (350, 550):
        contacts[index] = {**contacts[10], "custom_fields": {"crm_id": str(index)}}
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    app = client_app(redis_url)
    try:
        # When: the parts go in reverse order
        for offset in (400, 200, 0):
            kwargs = {"contacts": contacts[offset : offset + 200], "job_id": "order-1", "offset": offset,
                      "final": offset == 400, "destinations": ["jsonl"]}  # fmt: skip
            app.send_task("dropq.enrich", kwargs=kwargs)
        status = wait_for_job(redis_url, "order-1", timeout_s=60)
    finally:
        app.close()
    # Then
    outcomes = {o["index"]: o for o in map(json.loads, (tmp_path / "order-1.jsonl").read_text().splitlines())}
    assert sorted(outcomes) == list(range(600))
    assert outcomes[10]["status"] != "duplicate"
    assert [(outcomes[i]["status"], outcomes[i]["duplicate_of"]) for i in (350, 550)] == [("duplicate", 10)] * 2
    assert status.duplicates == 2 and status.received == 600
    client = redis.Redis.from_url(redis_url)
    try:
        assert not client.exists(keys.job_parked_parts_key("order-1"))
    finally:
        client.close()
