"""The worker's start-up checks against a real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import redis

from dropq.config.settings import DEFAULT_API_URL, MISSING_API_KEY_REASON
from dropq.workers.embedded import EmbeddedRedis
from dropq.workers.startup import eviction_warning
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app


def test_an_evicting_redis_is_named_and_noeviction_is_quiet() -> None:
    """allkeys-lru gets a warning naming the policy; noeviction none."""
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        try:
            assert eviction_warning(client) is None
            client.config_set("maxmemory-policy", "allkeys-lru")
            warning = eviction_warning(client)
            assert warning is not None and "allkeys-lru" in warning and "noeviction" in warning
        finally:
            client.close()


def test_a_worker_without_an_api_key_says_so_at_start_and_fails_its_jobs_once_with_that_reason(
    start_worker: Any, redis_url: str, tmp_path: Path
) -> None:
    """No DROPCONTACT_API_KEY against the real API's URL: an error line at start; jobs fail, nothing is sent."""
    # Given: a worker as `honcho start` runs it without a key (the real API's URL, unreachable here anyway)
    env = worker_env(redis_url, _NoSandbox(), tmp_path)
    env |= {"DROPCONTACT_API_KEY": "", "DROPCONTACT_API_URL": DEFAULT_API_URL}
    worker = start_worker(env)
    # Then: it says so as soon as it is ready
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "api_key_missing" not in worker.output():
        time.sleep(0.1)
    ready = [json.loads(line) for line in worker.output().splitlines() if '"api_key_missing"' in line]
    assert ready and ready[0]["level"] == "error" and ready[0]["reason"] == MISSING_API_KEY_REASON
    # When: a job of two batches is sent
    app = client_app(redis_url)
    try:
        app.send_task("dropq.enrich", kwargs={"contacts": make_contacts(150), "job_id": "no-key"}).get(timeout=30)
    finally:
        app.close()
    status = wait_for_job(redis_url, "no-key", timeout_s=30)
    # Then: every record failed with the one reason, and the job says it too
    assert status.failed == 150 and status.fatal_reason == MISSING_API_KEY_REASON
    outcomes = [json.loads(line) for line in (tmp_path / "no-key.jsonl").read_text().splitlines()]
    assert {o["reason"] for o in outcomes} == {MISSING_API_KEY_REASON}
    assert "submit_error" not in worker.output() and "auth_failed" not in worker.output()


class _NoSandbox:
    """Stands for the sandbox argument of worker_env: this worker talks to no API at all."""

    url = DEFAULT_API_URL
    api_key = ""
