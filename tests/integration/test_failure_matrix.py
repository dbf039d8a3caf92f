"""The failure matrix (issue 6): each way the API, a destination or Redis can fail, on real workers end to end.

Every test runs a small job on a real Celery worker against the sandbox over
HTTP and a private Redis, with one fault chosen explicitly, and checks the
accounting invariant (received = delivered + rejected + duplicates + failed)
besides what the fault must (not) do.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dropq.dropcontact.sandbox import envelopes
from dropq.workers import keys
from dropq.workers.embedded import EmbeddedRedis
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from dropq.workers.jobs.watchdog import Watchdog
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.pipeline.sink import NOT_PROCESSED_REASON
from dropq.workers.pipeline.submit import AUTH_FAILED_REASON
from tests.support.contacts import make_contacts
from tests.support.pipeline import read_stream, send_calls, wait_for_job, worker_env
from tests.support.processes import WorkerProcess, client_app

# Messages a worker held when the broker went away come back after this (the chaos tests' value).
RESTART_VISIBILITY_S = "12"
# A step lost with the restart is re-sent by the sweep after this.
RESTART_STALL_S = "5"
# Records per batch, as produce packs them (no invalid rows in these jobs, so batches are full runs of input).
_BATCH = 250


def _enrich(redis_url: str, job_id: str, contacts: list[dict[str, Any]], destinations: list[str]) -> None:
    app = client_app(redis_url)
    try:
        kwargs = {"contacts": contacts, "job_id": job_id, "destinations": destinations}
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()


def _outcomes(out: Path, job_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / f"{job_id}.jsonl").read_text().splitlines()]


def _assert_accounted(status: JobStatus, n: int) -> None:
    assert status.received == n
    assert status.received == status.delivered + status.rejected + status.duplicates + status.failed


def _assert_once_each(out: Path, redis_url: str, job_id: str, n: int) -> list[dict[str, Any]]:
    lines = _outcomes(out, job_id)
    assert [o["index"] for o in lines] == list(range(n)), "the file must hold each record once, in order"
    streamed = Counter(o["index"] for o in read_stream(redis_url, job_id))
    assert sorted(streamed) == list(range(n)) and max(streamed.values()) == 1, "the stream must hold each once"
    return lines


def _batch_errors(redis_url: str, job_id: str) -> list[int]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = BatchStore(client, 3600, Watchdog(client, 60_000, 3600))
        batch_ids = client.smembers(keys.job_batches_key(job_id))
        return [b.errors for b in (store.get(str(i)) for i in batch_ids) if b is not None]
    finally:
        client.close()


def _log_events(worker: WorkerProcess, event: str) -> list[dict[str, Any]]:
    found = []
    for line in worker.output().splitlines():
        if f'"{event}"' in line and line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == event:
                found.append(entry)
    return found


def test_a_wrong_token_fails_the_job_fast_with_one_reason(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A refused token fails every record with the token reason within seconds, after a handful of 401s, unleaked."""
    # Given: a worker whose key the sandbox does not accept
    secret = "wrong-token-7f3c9e1a2b"
    env = worker_env(redis_url, sandbox, tmp_path, DROPCONTACT_API_KEY=secret)
    worker = start_worker(env, concurrency=4)
    n = 2000
    # When
    started = time.monotonic()
    _enrich(redis_url, "auth-1", make_contacts(n), ["jsonl", "stream"])
    status = wait_for_job(redis_url, "auth-1", timeout_s=30)
    elapsed_s = time.monotonic() - started
    # Then
    assert elapsed_s < 10, f"the job took {elapsed_s:.1f}s to fail"
    _assert_accounted(status, n)
    assert status.failed == n and status.fatal_reason == AUTH_FAILED_REASON
    lines = _assert_once_each(tmp_path, redis_url, "auth-1", n)
    assert {(o["status"], o["reason"]) for o in lines} == {("failed", AUTH_FAILED_REASON)}
    stats = sandbox.stats()
    # At most one 401 per submit in flight when the first one came back; never one per retry and batch.
    assert 1 <= stats["status_counts"].get("401", 0) <= 4
    assert stats["batches_received"] == 0
    assert secret not in worker.output()
    assert secret not in (tmp_path / "auth-1.jsonl").read_text()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert not [key for key in client.scan_iter(count=1000) if secret in key]
    finally:
        client.close()


def test_missing_credits_pause_the_account_and_resume_by_themselves(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A 403 pauses submits once (one warning); once credits are added the job finishes with nothing failed."""
    # Given: credits for one batch of three
    sandbox.configure(credits=300)
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_CREDIT_RECHECK_S="1")
    worker = start_worker(env, concurrency=3)
    n = 3 * _BATCH
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    guard = CreditGuard(client, keys.account_id(sandbox.api_key))
    try:
        # When: the job hits the 403
        _enrich(redis_url, "credits-1", make_contacts(n), ["jsonl", "stream"])
        deadline = time.monotonic() + 15
        while not guard.status()["paused"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert guard.status()["paused"], "the account must pause after a 403"
        time.sleep(2.5)  # two re-check intervals: the pause holds while the balance stays short
        paused = guard.status()
        assert paused["paused"] and paused["paused_needed"] == _BATCH
        # ...and credits come back
        sandbox.configure(credits=10_000)
        status = wait_for_job(redis_url, "credits-1", timeout_s=30)
        # Then
        assert not guard.status()["paused"]
    finally:
        client.close()
    _assert_accounted(status, n)
    assert status.failed == 0 and status.delivered == n
    _assert_once_each(tmp_path, redis_url, "credits-1", n)
    assert sandbox.stats()["status_counts"].get("403", 0) >= 1
    assert len(_log_events(worker, "credits_paused")) == 1
    assert len(_log_events(worker, "credits_resumed")) >= 1


def test_a_429_storm_is_waited_out_without_using_retries(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Three seconds of 429 on every request: with one retry allowed, nothing fails and no batch counts an error."""
    # Given
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_MAX_RETRIES="1")
    start_worker(env, concurrency=3)
    n = 4 * _BATCH
    # When
    sandbox.configure(storm_s=3)
    _enrich(redis_url, "storm-1", make_contacts(n), ["jsonl", "stream"])
    status = wait_for_job(redis_url, "storm-1", timeout_s=30)
    # Then
    _assert_accounted(status, n)
    assert status.failed == 0
    _assert_once_each(tmp_path, redis_url, "storm-1", n)
    assert sandbox.stats()["faults"].get("429", 0) >= 1, "the storm must have been seen"
    assert _batch_errors(redis_url, "storm-1") == [0] * status.batches


def test_server_errors_are_retried_a_bounded_number_of_times(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Every request answered 5xx/524: each batch is tried retries+1 times, then failed with the last error."""
    # Given
    sandbox.configure(error_probability=1.0)
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_MAX_RETRIES="2")
    start_worker(env, concurrency=3)
    n = 3 * _BATCH
    # When
    _enrich(redis_url, "errors-1", make_contacts(n), ["jsonl", "stream"])
    status = wait_for_job(redis_url, "errors-1", timeout_s=30)
    # Then
    _assert_accounted(status, n)
    assert status.failed == n
    lines = _assert_once_each(tmp_path, redis_url, "errors-1", n)
    reasons = {o["reason"] for o in lines}
    assert all(o["status"] == "failed" for o in lines)
    assert all(r.startswith("gave up after 3 errors; last: ") for r in reasons), reasons
    assert all(any(code in r for code in ("500", "503", "504", "524")) for r in reasons), reasons
    stats = sandbox.stats()
    assert stats["requests_total"] == status.batches * 3
    assert stats["batches_received"] == 0


class _RefusingFront:
    """A real HTTP front to the sandbox that answers the API's 400 to any batch holding a poison record.

    It stands for the API measuring a record differently from us (its exact
    measure of "15 kB" is not documented): the sandbox itself can only refuse a
    record that produce already rejects, so no honest request reaches its 400.
    """

    def __init__(self, upstream: str, poison: str) -> None:
        self.upstream = upstream
        self.poison = poison
        self.refused = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                front._forward(self, None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                data = json.loads(body).get("data", [])
                if any(record.get("company") == front.poison for record in data):
                    front.refused += 1
                    front._answer(self, 400, envelopes.reason_body(envelopes.RECORD_TOO_BIG))
                    return
                front._forward(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("x-access-token", "content-type")}
        method = "POST" if body is not None else "GET"
        answer = requests.request(method, self.upstream + handler.path, data=body, headers=headers, timeout=10)
        self._answer(handler, answer.status_code, answer.content, answer.headers.get("Content-Type"))

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind or "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> _RefusingFront:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def refusing_front(sandbox: Any) -> Iterator[_RefusingFront]:
    """The sandbox behind a front that refuses batches holding the record of company ``Refused Ltd``."""
    with _RefusingFront(sandbox.url, "Refused Ltd") as front:
        yield front


def test_a_refused_batch_is_split_until_only_the_bad_record_fails(
    start_worker: Any, redis_url: str, sandbox: Any, refusing_front: _RefusingFront, tmp_path: Path
) -> None:
    """A 400 for one record of a batch: the batch is bisected, that record alone fails with the API's reason."""
    # Given: one record of the second batch that the API refuses
    env = worker_env(redis_url, sandbox, tmp_path, DROPCONTACT_API_URL=refusing_front.url)
    start_worker(env, concurrency=3)
    n, bad = 2 * _BATCH, _BATCH + 77
    contacts = make_contacts(n)
    contacts[bad]["company"] = refusing_front.poison
    # When
    _enrich(redis_url, "split-1", contacts, ["jsonl", "stream"])
    status = wait_for_job(redis_url, "split-1", timeout_s=30)
    # Then
    _assert_accounted(status, n)
    assert status.failed == 1 and status.delivered == n - 1
    lines = _assert_once_each(tmp_path, redis_url, "split-1", n)
    assert lines[bad]["status"] == "failed"
    assert lines[bad]["reason"] == f"the API refused the record: {envelopes.RECORD_TOO_BIG}"
    assert all(o["status"] in ("enriched", "not_found") for i, o in enumerate(lines) if i != bad)
    # Bisecting 250 records down to the one refused takes 9 refusals here (250, 125, 63, 31, 16, 8, 4, 2, 1).
    assert refusing_front.refused == 9
    stats = sandbox.stats()
    assert stats["records_received"] == n - 1 and stats["duplicate_records_posted"] == 0


def test_past_the_maximum_age_results_are_forced_once(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Batches slower than DROPQ_POLL_MAX_AGE_S: one forced GET each; processed records delivered, the rest failed."""
    # Given: batches that take 30 to 40 s and a maximum wait of 3 s
    sandbox.configure(processing_min_s=30, processing_max_s=40)
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_POLL_MAX_AGE_S="3")
    start_worker(env, concurrency=3)
    n = 3 * _BATCH
    # When
    started = time.monotonic()
    _enrich(redis_url, "aged-1", make_contacts(n), ["jsonl", "stream"])
    status = wait_for_job(redis_url, "aged-1", timeout_s=20)
    elapsed_s = time.monotonic() - started
    # Then
    assert elapsed_s < 12, f"the job took {elapsed_s:.1f}s"
    _assert_accounted(status, n)
    lines = _assert_once_each(tmp_path, redis_url, "aged-1", n)
    assert status.delivered > 0 and status.failed > 0
    for start in range(0, n, _BATCH):
        batch = lines[start : start + _BATCH]
        processed = [o["status"] in ("enriched", "not_found") for o in batch]
        # forceResults returns the processed records first, the input of the others after them.
        assert processed == sorted(processed, reverse=True), f"batch at {start}: processed records must lead"
        assert {o["reason"] for o in batch if o["status"] == "failed"} <= {NOT_PROCESSED_REASON}
    stats = sandbox.stats()
    assert stats["polls_in_progress"] == status.batches == 3
    assert stats["polls_ready"] == 0


def test_a_failing_destination_neither_blocks_nor_duplicates_the_others(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A CSV destination that cannot write: jsonl and stream get every record once; its units count as failed."""
    # Given: a csv destination whose directory lies under a regular file
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, not a directory\n")
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_MAX_RETRIES="1")
    config = Path(env["DROPQ_DESTINATIONS"])
    config.write_text(config.read_text() + f'\n[destinations.broken]\ntype = "csv"\ndirectory = "{blocker}/out"\n')
    worker = start_worker(env, concurrency=3)
    n = 4 * _BATCH
    # When
    _enrich(redis_url, "dest-1", make_contacts(n), ["broken", "jsonl", "stream"])
    status = wait_for_job(redis_url, "dest-1", timeout_s=30)
    # Then
    _assert_accounted(status, n)
    assert status.failed == 0
    _assert_once_each(tmp_path, redis_url, "dest-1", n)
    assert status.deliveries_failed == status.batches == 4
    failures = _log_events(worker, "delivery_failed")
    assert len(failures) == 4 and {f["destination"] for f in failures} == {"broken"}


@pytest.mark.slow
def test_a_job_survives_a_redis_restart(start_worker: Any, sandbox: Any, tmp_path: Path) -> None:
    """Redis (with persistence) restarted mid-job: the job finishes, each record delivered once to file and stream."""
    # Given: a private persistent Redis, not the shared one, and a worker on it
    with EmbeddedRedis(appendonly=True) as server:
        # Short timeouts keep the lease of a POST whose answer Redis lost (the documented window) short.
        env = worker_env(
            server.url,
            sandbox,
            tmp_path,
            DROPQ_VISIBILITY_TIMEOUT_S=RESTART_VISIBILITY_S,
            DROPQ_STALL_TIMEOUT_S=RESTART_STALL_S,
            DROPQ_CONNECT_TIMEOUT_S="1",
            DROPQ_READ_TIMEOUT_S="3",
        )
        env["CELERY_BROKER_URL"] = server.url
        sandbox.configure(processing_min_s=0.5, processing_max_s=2.0)
        start_worker(env, concurrency=3)
        n = 8 * _BATCH
        _enrich(server.url, "restart-1", make_contacts(n), ["jsonl", "stream"])
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                job = JobLedger(client, 60).read("restart-1")
                if job is not None and job.batches_submitted >= 2:
                    break
                time.sleep(0.05)
        finally:
            client.close()
        # When
        server.restart()
        status = wait_for_job(server.url, "restart-1", timeout_s=40)
        # Then
        _assert_accounted(status, n)
        assert status.failed == 0
        _assert_once_each(tmp_path, server.url, "restart-1", n)
        stats = sandbox.stats()
        # A batch is POSTed twice only in the documented window (its answer lost with Redis), and then it is counted.
        assert stats["duplicate_batches_posted"] <= status.resubmitted


def test_a_refused_shared_request_sends_each_batch_alone_and_only_the_bad_record_fails(
    start_worker: Any, redis_url: str, sandbox: Any, refusing_front: _RefusingFront, tmp_path: Path
) -> None:
    """A 400 for a request shared by 12 jobs: each batch goes alone; only the refused record's job has a failure."""
    # Given: 12 calls of 2 contacts, one of which the API refuses
    env = worker_env(redis_url, sandbox, tmp_path, DROPCONTACT_API_URL=refusing_front.url)
    start_worker(env, concurrency=3)
    contacts = make_contacts(24, seed=5)
    contacts[15]["company"] = refusing_front.poison
    send_calls(redis_url, "share", contacts)
    # Then: job 7 (contacts 14 and 15) has its second record failed with the API's reason, every other record back
    for n in range(12):
        status = wait_for_job(redis_url, f"share-{n}", timeout_s=30)
        _assert_accounted(status, 2)
        lines = _outcomes(tmp_path, f"share-{n}")
        assert [o["index"] for o in lines] == [0, 1]
        expected = ["enriched_or_not_found", "failed"] if n == 7 else ["enriched_or_not_found"] * 2
        assert ["failed" if o["status"] == "failed" else "enriched_or_not_found" for o in lines] == expected
    assert _outcomes(tmp_path, "share-7")[1]["reason"] == f"the API refused the record: {envelopes.RECORD_TOO_BIG}"
    # A shared request (or more) refused, then job 7's batch of 2 and its bad half: nothing else, no record twice
    assert refusing_front.refused >= 3
    stats = sandbox.stats()
    assert stats["records_received"] == 23 and stats["duplicate_records_posted"] == 0
