"""The http destination against a real local receiver, alone and behind real workers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from dropq.workers.destinations.base import DestinationError
from dropq.workers.destinations.http import HttpDestination
from dropq.workers.jobs.ledger import JobStatus
from tests.support.contacts import make_contacts
from tests.support.pipeline import add_destination, read_stream, wait_for_job, worker_env
from tests.support.processes import WorkerProcess, client_app
from tests.support.sandbox import serve_posts

# A header value from the environment that must reach the receiver and nowhere else.
TOKEN = "Bearer tok-5c1a9e77d3"


@dataclass
class Receiver:
    """What the receiver got (body and headers of each POST), and what it answers."""

    url: str = ""
    # The first ``failures`` calls get ``failure_status``; the rest get ``status``.
    failures: int = 0
    failure_status: int = 500
    status: int = 200
    calls: list[tuple[dict[str, Any], dict[str, str], int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any], headers: dict[str, str]) -> int:
        """Record one call and pick its status."""
        with self._lock:
            status = self.failure_status if len(self.calls) < self.failures else self.status
            self.calls.append((body, headers, status))
            return status


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on a free port, in a thread."""
    got = Receiver()

    async def receive(request: Request) -> Response:
        return Response(status_code=got.answer(json.loads(await request.body()), dict(request.headers)))

    with serve_posts(receive) as base_url:
        got.url = f"{base_url}/outcomes"
        yield got


def _run_job(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, receiver: Receiver, job_id: str, n: int
) -> tuple[JobStatus, WorkerProcess]:
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_MAX_RETRIES="2", CRM_TOKEN=TOKEN)
    add_destination(env, "crm", "http", url=receiver.url, headers_env={"Authorization": "CRM_TOKEN"})
    worker = start_worker(env, concurrency=2)
    app = client_app(redis_url)
    try:
        kwargs = {"contacts": make_contacts(n), "job_id": job_id, "destinations": ["crm", "stream"]}
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()
    return wait_for_job(redis_url, job_id, timeout_s=30), worker


def _events(worker: WorkerProcess, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("event") == event and e.get("destination") == "crm"]


def test_every_record_arrives_with_the_idempotency_key_and_the_header_from_env(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, receiver: Receiver
) -> None:
    """Each unit is one POST keyed job:unit, carrying the env header; the token never shows in the log."""
    status, worker = _run_job(start_worker, redis_url, sandbox, tmp_path, receiver, "http-1", 300)
    assert status.received == 300 and status.deliveries_failed == 0
    indexes = sorted(o["index"] for body, _, _ in receiver.calls for o in body["records"])
    assert indexes == list(range(300))
    for body, headers, _ in receiver.calls:
        assert headers["idempotency-key"] == f"http-1:{body['unit_id']}" and body["job_id"] == "http-1"
        assert headers["authorization"] == TOKEN and headers["content-type"] == "application/json"
    assert TOKEN.split()[1] not in worker.output()


def test_transient_500s_are_retried_until_the_receiver_accepts(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, receiver: Receiver
) -> None:
    """The first two POSTs get 500: they are retried with the same key and every record ends up accepted."""
    receiver.failures = 2
    status, worker = _run_job(start_worker, redis_url, sandbox, tmp_path, receiver, "http-500", 300)
    assert status.deliveries_failed == 0
    accepted = [(body, headers) for body, headers, code in receiver.calls if code == 200]
    assert sorted(o["index"] for body, _ in accepted for o in body["records"]) == list(range(300))
    assert len({headers["idempotency-key"] for _, headers in accepted}) == len(accepted) == 2
    refused_keys = {headers["idempotency-key"] for _, headers, code in receiver.calls if code == 500}
    assert refused_keys <= {headers["idempotency-key"] for _, headers in accepted}
    assert len(_events(worker, "delivery_retry")) == 2 and not _events(worker, "delivery_failed")


def test_a_400_gives_up_at_once_and_is_counted(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, receiver: Receiver
) -> None:
    """A 400 is permanent: no retry, the unit counts in deliveries_failed, the stream still gets every record."""
    receiver.status = 400
    status, worker = _run_job(start_worker, redis_url, sandbox, tmp_path, receiver, "http-400", 300)
    assert status.received == 300 and status.deliveries_failed == status.batches == 2
    assert len(receiver.calls) == 2
    failed = _events(worker, "delivery_failed")
    assert len(failed) == 2 and all("answered 400" in e["reason"] for e in failed)
    assert not _events(worker, "delivery_retry")
    assert sorted(o["index"] for o in read_stream(redis_url, "http-400")) == list(range(300))
    assert TOKEN.split()[1] not in worker.output()


@pytest.mark.parametrize(("code", "is_transient"), [(408, True), (425, True), (429, True), (503, True), (404, False)])
def test_statuses_are_split_into_transient_and_permanent(receiver: Receiver, code: int, is_transient: bool) -> None:
    """408, 425, 429 and 5xx are worth retrying; another 4xx is not; the reason names the status."""
    receiver.status = code
    destination = HttpDestination("crm", receiver.url, {}, timeout_s=5)
    with pytest.raises(DestinationError) as caught:
        destination.deliver("job-1", "unit-a", [{"index": 0}])
    assert caught.value.is_transient is is_transient and f"answered {code}" in caught.value.reason


def test_an_unreachable_receiver_is_transient() -> None:
    """A refused connection is retried later, and the reason hides the URL's credentials."""
    destination = HttpDestination("crm", "http://user:pw-31f0@127.0.0.1:1/in", {}, timeout_s=2)
    with pytest.raises(DestinationError) as caught:
        destination.deliver("job-1", "unit-a", [{"index": 0}])
    assert caught.value.is_transient and "pw-31f0" not in str(caught.value)
