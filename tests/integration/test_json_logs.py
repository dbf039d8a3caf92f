"""With ``DROPQ_LOG_FORMAT=json`` every line a worker, the receiver and the sandbox write is one JSON event."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from dropq.workers.embedded import free_port
from tests.support.pipeline import FAST_POLLING, wait_for_job
from tests.support.processes import ROOT, client_app

pytestmark = pytest.mark.timeout(120)


def _parsed_lines(where: str, text: str) -> list[dict[str, Any]]:
    """Every non-empty line as JSON, each with its host and pid (fails naming the first line that is not)."""
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{where} line {number} is not JSON: {line!r}") from None
        assert isinstance(event, dict) and "event" in event, f"{where} line {number}: {line!r}"
        assert event.get("host") == socket.gethostname() and isinstance(event.get("pid"), int), line
        events.append(event)
    return events


def _start(args: list[str], env: dict[str, str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dropq", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_http(url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _send_garbage(port: int) -> None:
    """A request line no HTTP server accepts: uvicorn logs a warning about it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        conn.recv(1024)


def test_worker_receiver_and_sandbox_write_only_json_lines(redis_url: str, start_worker: Any, tmp_path: Path) -> None:
    """A job whose records partly fail: every line of the three processes parses, warnings carry the reason."""
    # Given: the sandbox slower than the poll's maximum age, so forceResults leaves records failed
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_"))}
    env = {**base, "REDIS_URL": redis_url, "DROPQ_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox_log, receiver_log = tmp_path / "sandbox.log", tmp_path / "receiver.log"
    (tmp_path / "destinations.toml").write_text(
        f'default = ["jsonl"]\n[destinations.jsonl]\ntype = "jsonl"\ndirectory = "{tmp_path}"\n'
    )
    with sandbox_log.open("wb") as s_out, receiver_log.open("wb") as r_out:
        sandbox = _start(["sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port), "--processing-min-s", "6",
                          "--processing-max-s", "7"], env, s_out)  # fmt: skip
        receiver = _start(["webhooks", "--host", "127.0.0.1", "--port", str(receiver_port)], env, r_out)
    try:
        _wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats")
        _wait_http(f"http://127.0.0.1:{receiver_port}/healthz")
        worker_env = {
            "DROPQ_LOG_FORMAT": "json", "DROPCONTACT_API_URL": f"http://127.0.0.1:{sandbox_port}",
            "DROPCONTACT_API_KEY": "sandbox", "DROPQ_DESTINATIONS": str(tmp_path / "destinations.toml"),
            **FAST_POLLING, "DROPQ_POLL_MAX_AGE_S": "1.5",
        }  # fmt: skip
        worker = start_worker(worker_env, name="jsonlog")
        # When
        caller = client_app(redis_url)
        contacts = [{"first_name": "Ada", "last_name": f"Json{i}", "website": "example.com"} for i in range(3)]
        caller.send_task("dropq.enrich", kwargs={"contacts": contacts, "job_id": "json-logs"}).get(timeout=30)
        caller.close()
        status = wait_for_job(redis_url, "json-logs", timeout_s=60)
        assert requests.get(f"http://127.0.0.1:{receiver_port}/healthz", timeout=5).text == "ok"
        requests.post(f"http://127.0.0.1:{receiver_port}/dropq/webhook/not-a-token", json={}, timeout=5)
        _send_garbage(sandbox_port)
        _send_garbage(receiver_port)
        worker.stop()
    finally:
        _stop(sandbox)
        _stop(receiver)
    # Then
    assert status.failed == 3
    worker_events = _parsed_lines("worker", worker.output())
    receiver_events = _parsed_lines("receiver", receiver_log.read_text())
    sandbox_events = _parsed_lines("sandbox", sandbox_log.read_text())
    names = [e["event"] for e in worker_events]
    assert "worker_starting" in names and "worker_ready" in names and "worker_signal" in names
    warned = {e["event"]: e for e in worker_events if e["level"] == "warning"}
    assert warned["batch_delivered"]["failed"] == 3 and warned["batch_delivered"]["first_reason"]
    assert warned["job_finished"]["failed"] == 3 and warned["job_finished"]["first_reason"]
    assert any(e["event"] == "receiver_listening" for e in receiver_events)
    assert any(e["event"] == "sandbox_listening" for e in sandbox_events)
    # uvicorn's own warnings about the garbage came through the same renderer
    assert any(e.get("logger", "").startswith("uvicorn") for e in sandbox_events + receiver_events)


def test_dropq_worker_honours_its_log_level(redis_url: str, tmp_path: Path) -> None:
    """`dropq worker -l debug` logs debug events; `-l warning` none at info."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_"))}
    env = {**base, "REDIS_URL": redis_url, "DROPQ_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    levels = {}
    for level in ("debug", "warning"):
        log = tmp_path / f"{level}.log"
        with log.open("wb") as out:
            worker = _start(["worker", "-p", "1", "-l", level, "-n", f"lvl-{level}@%h", "--without-mingle"], env, out)
        app = client_app(redis_url)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not app.control.ping(
                destination=[f"lvl-{level}@{socket.gethostname()}"], timeout=0.5
            ):
                pass
        finally:
            app.close()
            _stop(worker)
        levels[level] = {e["level"] for e in _parsed_lines(f"worker -l {level}", log.read_text())}
    assert "debug" in levels["debug"]
    assert not levels["warning"] & {"debug", "info"}
