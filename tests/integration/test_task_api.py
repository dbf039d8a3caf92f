"""The task API from another application's point of view, on a Redis and a RabbitMQ broker."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import amqp.exceptions
import kombu
import pytest

from dropq.workers.jobs.outcomes import OUTCOME_KEYS
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import ROOT, client_app

RABBITMQ_URL = os.environ.get("DROPQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _rabbitmq_or_skip() -> str:
    try:
        with kombu.Connection(RABBITMQ_URL, connect_timeout=2) as conn:
            conn.connect()
            for queue in ("dropq.produce", "dropq.submit", "dropq.poll", "dropq.sink", "celery", "crm"):
                # Leftovers of an earlier run on this shared broker would run against this test's Redis.
                # A queue never declared on this broker has nothing to purge.
                with contextlib.suppress(amqp.exceptions.NotFound):
                    kombu.Queue(queue, channel=conn.channel()).purge()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"RabbitMQ must be reachable under CI at {RABBITMQ_URL}: {exc}") from exc
        pytest.skip(f"RabbitMQ not reachable at {RABBITMQ_URL}: {exc}")
    return RABBITMQ_URL


def _start_foreign_worker(broker: str, backend: str, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRM_BROKER_URL": broker, "CRM_BACKEND_URL": backend, "CRM_OUT": str(out)}
    log = (out / "crm-worker.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.support.foreign_app", "worker", "-Q", "crm", "-c", "1",
         "-n", "crm@%h", "--without-mingle", "--without-gossip", "-l", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_for_file_lines(path: Path, n: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            if len(lines) >= n:
                return lines
        time.sleep(0.2)
    raise AssertionError(f"{path} did not get {n} lines in {timeout_s}s")


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_another_app_enriches_through_send_task_and_gets_callbacks(
    broker: str, start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A Celery app with none of our code sends dropq.enrich in two parts and receives every record and one summary."""
    # Given
    broker_url = _rabbitmq_or_skip() if broker == "rabbitmq" else redis_url
    env = worker_env(redis_url, sandbox, tmp_path, CELERY_BROKER_URL=broker_url)
    start_worker(env, concurrency=3)
    crm = _start_foreign_worker(broker_url, redis_url, tmp_path)
    contacts = make_contacts(600, invalid_every=50, duplicate_every=40)
    callback = {"task": "crm.enriched", "queue": "crm", "on_done": "crm.job_done"}
    app = client_app(broker_url, redis_url)
    try:
        # When: two calls under one job id, the second marked final, and the first sent twice
        common = {"job_id": "crm-001", "destinations": [], "language": "en", "callback": callback}
        first = {"contacts": contacts[:400], "offset": 0, "final": False, **common}
        app.send_task("dropq.enrich", kwargs=first, queue="dropq.produce").get(timeout=30)
        app.send_task("dropq.enrich", kwargs=first, queue="dropq.produce").get(timeout=30)
        second = {"contacts": contacts[400:], "offset": 400, "final": True, **common}
        app.send_task("dropq.enrich", kwargs=second).get(timeout=30)
        status = wait_for_job(redis_url, "crm-001")
        # Then
        done = _wait_for_file_lines(tmp_path / "done.jsonl", 1)
        records = _wait_for_file_lines(tmp_path / "records.jsonl", 600)
        time.sleep(1)  # a second announcement, if there were one, would land by now
        assert len((tmp_path / "done.jsonl").read_text().splitlines()) == 1
        assert done[0]["summary"]["received"] == 600 == status.received
        assert done[0]["summary"]["state"] == "finished"
        assert done[0]["summary"]["finished_ms"] == status.finished_ms > 0
        assert sorted(r["index"] for r in records) == list(range(600))
        # The callback's records have the documented outcome's keys, in order, whatever their status.
        assert {r["status"] for r in records} >= {"rejected", "duplicate"}
        assert all(tuple(r)[: len(OUTCOME_KEYS)] == OUTCOME_KEYS for r in records), records[:3]
        assert status.received == status.delivered + status.rejected + status.duplicates + status.failed
    finally:
        app.close()
        crm.terminate()
        crm.wait(timeout=20)
