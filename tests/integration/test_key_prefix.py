"""Two deployments on one Redis (``DROPQ_KEY_PREFIX``): the same job ids, and each gets only its own."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from dropq.config.celeryconfig import caller_routes
from tests.support.contacts import make_contacts
from tests.support.pipeline import worker_env


def _caller(redis_url: str, prefix: str) -> Celery:
    """Another application pointed at one deployment: the README's route line, with that deployment's prefix."""
    app = Celery(f"crm-{prefix}", broker=redis_url, backend=redis_url)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    app.conf.update(task_routes=caller_routes(prefix))
    return app


def _wait_finished(client: redis.Redis, prefix: str, job_id: str, timeout_s: float = 90.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    ledger: dict[str, str] = {}
    while time.monotonic() < deadline:
        ledger = client.hgetall(f"{prefix}:job:{job_id}")
        if ledger.get("state") == "finished":
            return ledger
        time.sleep(0.2)
    raise AssertionError(f"{prefix}:{job_id} did not finish: {ledger}")


def test_two_prefixes_on_one_redis_keep_their_jobs_queues_and_outputs_apart(
    start_worker: Any, redis_url: str, redis_client: redis.Redis, sandbox: Any, tmp_path: Path
) -> None:
    """Production (the default prefix) and staging share a Redis and job ids; nothing crosses over."""
    # Given: two deployments, each with its own worker and output folder, the same API key
    outputs = {"dropq": tmp_path / "production", "staging": tmp_path / "staging"}
    workers = {}
    for prefix, folder in outputs.items():
        folder.mkdir()
        env = worker_env(redis_url, sandbox, folder, DROPQ_KEY_PREFIX=prefix)
        workers[prefix] = start_worker(env, name=prefix, concurrency=1)
    sizes = {"dropq": 7, "staging": 4}
    apps = {prefix: _caller(redis_url, prefix) for prefix in outputs}
    try:
        # When: each deployment gets two jobs under the same ids as the other's, with other contacts
        for prefix, app in apps.items():
            for job_id in ("same-1", "same-2"):
                contacts = make_contacts(sizes[prefix], seed=len(prefix))
                for contact in contacts:
                    contact["custom_fields"]["deployment"] = prefix
                app.send_task("dropq.enrich", kwargs={"contacts": contacts, "job_id": job_id}).get(timeout=30)
        ledgers = {(p, j): _wait_finished(redis_client, p, j) for p in outputs for j in ("same-1", "same-2")}
        active = {
            p: app.control.inspect(destination=[f"{p}@{os.uname().nodename}"], timeout=5).active_queues()
            for p, app in apps.items()
        }
    finally:
        for app in apps.values():
            app.close()
    # Then: each job counts and delivers its own deployment's contacts, to its own folder
    for (prefix, job_id), ledger in ledgers.items():
        assert int(ledger["received"]) == sizes[prefix] == int(ledger["delivered"])
        lines = [json.loads(line) for line in (outputs[prefix] / f"{job_id}.jsonl").read_text().splitlines()]
        assert len(lines) == sizes[prefix]
        assert {line["record"]["custom_fields"]["deployment"] for line in lines} == {prefix}
    # ...each worker consumed its own deployment's queues...
    for prefix, replies in active.items():
        names = sorted(queue["name"] for queues in (replies or {}).values() for queue in queues)
        assert names == sorted(f"{prefix}.{stage}" for stage in ("poll", "produce", "sink", "submit"))
    # ...and every key is under its deployment's prefix, but for the account's limits, which the API key shares.
    assert redis_client.exists("staging:job:same-1", "dropq:job:same-1") == 2
    assert redis_client.keys("dropq:limiter:*") and not redis_client.keys("staging:limiter:*"), (
        "one account, one limiter"
    )
    for worker in workers.values():
        assert "Traceback" not in worker.output()
