"""``dropq worker``: one thread-pool process per core (here two), stopped together, and a job run on them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import ROOT, client_app


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dropq", "worker", "-l", "warning", "--without-mingle", "--without-gossip", *args],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _stop_all(group: subprocess.Popen[bytes]) -> None:
    """After a failure: the group and its processes (each in its own session) go."""
    if group.poll() is None:
        for child in psutil.Process(group.pid).children():
            child.kill()
        os.killpg(group.pid, signal.SIGKILL)
        group.wait()


def _names(app: Any, expected: int, timeout_s: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    names: list[str] = []
    while time.monotonic() < deadline and len(names) < expected:
        names = sorted(name for reply in app.control.ping(timeout=0.5) for name in reply)
    return names


def test_two_processes_of_threads_run_a_job_and_stop_together_on_sigterm(
    redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """-p 2: two Celery workers named dropq1@ and dropq2@, thread pools, one job done, SIGTERM stops both with 0."""
    group = _start(worker_env(redis_url, sandbox, tmp_path), "-p", "2")
    app = client_app(redis_url)
    try:
        names = _names(app, 2)
        assert [name.split("@")[0] for name in names] == ["dropq1", "dropq2"]
        stats = app.control.inspect(timeout=5).stats() or {}
        assert {reply["pool"]["implementation"] for reply in stats.values()} == {"celery.concurrency.thread:TaskPool"}
        assert {reply["pool"]["max-concurrency"] for reply in stats.values()} == {64}
        children = psutil.Process(group.pid).children()
        app.send_task("dropq.enrich", kwargs={"contacts": make_contacts(300), "job_id": "group-1"}).get(timeout=30)
        assert wait_for_job(redis_url, "group-1").delivered == 300
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=60) == 0
        assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    finally:
        app.close()
        _stop_all(group)


def test_one_process_that_dies_takes_the_group_down_with_its_code(redis_url: str, sandbox: Any, tmp_path: Path) -> None:
    """A process manager sees the group fail when one of its processes does, and restarts the whole group."""
    group = _start(worker_env(redis_url, sandbox, tmp_path), "-p", "2")
    app = client_app(redis_url)
    try:
        assert len(_names(app, 2)) == 2
        victim, survivor = psutil.Process(group.pid).children()
        victim.kill()
        assert group.wait(timeout=60) == 128 + signal.SIGKILL
        survivor.wait(timeout=5)
    finally:
        app.close()
        _stop_all(group)


def test_the_prefork_pool_is_still_there_under_its_other_name(redis_url: str, sandbox: Any, tmp_path: Path) -> None:
    """-P processes -c 2: Celery's prefork pool with two children (-P prefork would mean the configured threads)."""
    group = _start(worker_env(redis_url, sandbox, tmp_path), "-p", "1", "-P", "processes", "-c", "2", "-n", "pf@%h")
    app = client_app(redis_url)
    try:
        assert len(_names(app, 1)) == 1
        stats = app.control.inspect(timeout=5).stats() or {}
        assert [reply["pool"]["implementation"] for reply in stats.values()] == ["celery.concurrency.prefork:TaskPool"]
        assert [len(reply["pool"]["processes"]) for reply in stats.values()] == [2]
    finally:
        app.close()
        _stop_all(group)
