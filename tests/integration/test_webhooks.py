"""Webhooks end to end: the sandbox pushes to a real `dropq webhooks` receiver; polling only catches lost pushes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dropq.workers import keys
from dropq.workers.embedded import free_port
from tests.support.contacts import make_contacts
from tests.support.pipeline import send_calls, wait_for_job, worker_env
from tests.support.processes import ROOT, client_app
from tests.support.sandbox import wait_for_results


@pytest.fixture
def receiver_env(redis_url: str, sandbox: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A running `dropq webhooks` receiver; the environment that makes workers use it."""
    port = free_port()
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_WEBHOOK_URL=f"http://127.0.0.1:{port}")
    log = (tmp_path / "receiver.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropq", "webhooks", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text == "ok":
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    else:
        raise AssertionError((tmp_path / "receiver.log").read_text())
    yield env
    proc.terminate()
    proc.wait(timeout=10)


def _run_job(redis_url: str, job_id: str, n: int) -> None:
    app = client_app(redis_url)
    try:
        kwargs = {"contacts": make_contacts(n), "job_id": job_id, "destinations": ["jsonl"]}
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()


def test_pushed_results_need_no_get_at_all(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """With the receiver running, every batch arrives by push and the API sees no GET."""
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "60"}, concurrency=3)
    _run_job(redis_url, "hooks-1", 1500)
    status = wait_for_job(redis_url, "hooks-1", timeout_s=40)
    assert status.delivered + status.rejected + status.duplicates == 1500
    stats = sandbox.stats()
    assert stats["webhooks_sent"] >= status.batches
    assert stats["requests"].get("GET /v1/enrich/all/{request_id}", 0) == 0
    assert len((tmp_path / "hooks-1.jsonl").read_text().splitlines()) == 1500


def test_the_push_of_a_shared_request_completes_every_job_it_carries(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Eight calls of 2 contacts share requests; their pushes bring every job its own records, with no GET."""
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "60"}, concurrency=3)
    contacts = make_contacts(16, seed=3)
    send_calls(redis_url, "hooked", contacts)
    for n in range(8):
        assert wait_for_job(redis_url, f"hooked-{n}", timeout_s=40).delivered == 2
        rows = [json.loads(line) for line in (tmp_path / f"hooked-{n}.jsonl").read_text().splitlines()]
        assert [row["input"]["custom_fields"]["crm_id"] for row in rows] == [
            c["custom_fields"]["crm_id"] for c in contacts[2 * n : 2 * n + 2]
        ]
    stats = sandbox.stats()
    assert stats["batches_received"] < 8 and stats["records_received"] == 16
    assert stats["requests"].get("GET /v1/enrich/all/{request_id}", 0) == 0


def test_lost_pushes_are_caught_by_polling(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Every push lost: the safety-net polls deliver the job anyway."""
    sandbox.configure(webhook_loss_probability=1.0)
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "1"}, concurrency=3)
    _run_job(redis_url, "hooks-2", 600)
    status = wait_for_job(redis_url, "hooks-2", timeout_s=40)
    assert status.failed == 0 and status.delivered + status.rejected + status.duplicates == 600
    assert sandbox.stats()["webhooks_lost"] >= status.batches


def test_forged_or_foreign_pushes_change_nothing(receiver_env: dict[str, str]) -> None:
    """A token we did not issue gets 404, whatever the body (it is not even read); the body is never trusted."""
    base = receiver_env["DROPQ_WEBHOOK_URL"]
    body = {"data": [{"first_name": "Mallory"}], "request_id": "forged"}
    answer = requests.post(f"{base}/dropq/webhook/not-a-token", json=body, timeout=5)
    assert answer.status_code == 404
    assert requests.post(f"{base}/dropq/webhook/x", data=b"{not json", timeout=5).status_code == 404
    assert requests.post(f"{base}/elsewhere", json=body, timeout=5).status_code == 404


def test_a_post_whose_answer_was_lost_waits_for_its_push_instead_of_paying_twice(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """The API takes every POST and the answers are lost: each batch's push proves it arrived; none is re-POSTed."""
    # Given: every answer lost (the API processes each request, then drops the connection)
    sandbox.configure(lost_response_probability=1.0)
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "30", "DROPQ_MAX_RETRIES": "30"}, concurrency=3)
    # When
    _run_job(redis_url, "hooks-doubt", 600)
    status = wait_for_job(redis_url, "hooks-doubt", timeout_s=40)
    # Then
    assert status.failed == 0 and status.delivered + status.rejected + status.duplicates == 600
    stats = sandbox.stats()
    assert stats["batches_received"] == status.batches, "no batch POSTed twice"
    assert stats["duplicate_batches_posted"] == 0 and status.resubmitted == 0
    assert len((tmp_path / "hooks-doubt.jsonl").read_text().splitlines()) == 600


def _head_only(base: str, path: str, **headers: str) -> int:
    """Send a POST's head and no body: the status the receiver answers before reading anything."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.putrequest("POST", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def _token_of(redis_url: str, batch_id: str) -> str:
    """The batch's callback token, once its submit has made it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 10
    try:
        while (token := client.hget(keys.batch_key(batch_id), "callback_token")) is None:
            assert time.monotonic() < deadline, f"no callback token for {batch_id}"
            time.sleep(0.05)
        return str(token)
    finally:
        client.close()


def test_the_receiver_answers_unknown_tokens_and_oversized_bodies_before_reading_them(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any
) -> None:
    """A 500 MB chunked body with a made-up token, or declared too large for a real one: answered from the head."""
    # Given: a real token (a batch waiting for its push)
    sandbox.configure(webhook_loss_probability=1.0)
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "60"})
    _run_job(redis_url, "hooks-big", 3)
    token = _token_of(redis_url, "hooks-big/0/0")
    base = receiver_env["DROPQ_WEBHOOK_URL"]
    # When / Then: no byte of either body is ever sent, and both are answered
    assert _head_only(base, "/dropq/webhook/made-up", **{"Transfer-Encoding": "chunked"}) == 404
    assert _head_only(base, f"/dropq/webhook/{token}", **{"Content-Length": str(500 * 1024 * 1024)}) == 413


def test_a_push_from_another_job_or_with_missing_records_is_refused_and_polling_completes_the_batch(
    receiver_env: dict[str, str], start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A real push of job B with its request_id removed, sent to job A's URL, and a push of 1 record of 3: both 409."""
    # Given: two jobs of 3 records, each in a request of its own, whose real pushes are lost, polled after 4 s
    sandbox.configure(webhook_loss_probability=1.0)
    start_worker({**receiver_env, "DROPQ_WEBHOOK_SAFETY_POLL_S": "4", "DROPQ_COALESCE_LINGER_S": "0"})
    app = client_app(redis_url)
    try:
        for job_id, seed in (("hooks-a", 1), ("hooks-b", 2)):
            kwargs = {"contacts": make_contacts(3, seed=seed), "job_id": job_id, "destinations": ["jsonl"]}
            app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 10
    while not client.hget(keys.batch_key("hooks-b/0/0"), "request_id") and time.monotonic() < deadline:
        time.sleep(0.05)
    request_b = str(client.hget(keys.batch_key("hooks-b/0/0"), "request_id"))
    records_b = wait_for_results(sandbox, request_b)["data"]
    url_a = f"{receiver_env['DROPQ_WEBHOOK_URL']}/dropq/webhook/{_token_of(redis_url, 'hooks-a/0/0')}"
    url_b = f"{receiver_env['DROPQ_WEBHOOK_URL']}/dropq/webhook/{_token_of(redis_url, 'hooks-b/0/0')}"
    # When
    foreign = requests.post(url_a, json={"data": records_b}, timeout=5)
    partial = requests.post(url_b, json={"data": records_b[:1], "request_id": request_b}, timeout=5)
    status_a, status_b = wait_for_job(redis_url, "hooks-a"), wait_for_job(redis_url, "hooks-b")
    # Then
    assert (foreign.status_code, partial.status_code) == (409, 409)
    assert status_a.failed == status_b.failed == 0 and status_a.delivered == status_b.delivered == 3
    for job_id, seed in (("hooks-a", 1), ("hooks-b", 2)):
        rows = [json.loads(line) for line in (tmp_path / f"{job_id}.jsonl").read_text().splitlines()]
        names = [row["record"]["last_name"] for row in rows]
        assert names == [c["last_name"] for c in make_contacts(3, seed=seed)], "each job keeps its own people"
    client.close()
