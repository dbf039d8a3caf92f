"""A ``dropq enrich --local`` run ended by a signal leaves nothing behind, and says truly how to go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dropq.workers.embedded import free_port
from tests.integration.test_cli_enrich import _SCRUBBED, _deliver_sigint
from tests.support.pipeline import FAST_POLLING
from tests.support.processes import ROOT, descendants, is_alive

pytestmark = pytest.mark.timeout(90)

# Batches that take long enough for the run to be interrupted while it waits.
_SLOW_SANDBOX = {"DROPQ_SANDBOX_PROCESSING_MIN_S": "20", "DROPQ_SANDBOX_PROCESSING_MAX_S": "20"}


def _start_local_run(tmp_path: Path, log: Path) -> subprocess.Popen[bytes]:
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(10)))
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env |= {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", **_SLOW_SANDBOX, **FAST_POLLING}
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "dropq", "enrich", str(source), "--local"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float = 45.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        if text in log.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never came on stderr:\n{log.read_text()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_a_local_run_and_every_process_it_started(tmp_path: Path, signum: signal.Signals) -> None:
    """SIGTERM or SIGHUP mid-run: sandbox, private Redis and workers all exit; 128 + signal; a true message."""
    # Given: a --local run that started the sandbox, a private Redis and a worker, and sent its job
    log = tmp_path / "stderr.txt"
    process = _start_local_run(tmp_path, log)
    try:
        _wait_for(log, "local worker process(es)", process)
        _wait_for(log, "sent 10/10", process)
        children = descendants(process.pid)
        assert len(children) >= 3, children  # the sandbox, redis-server, the worker (and what it forked)
        # When
        process.send_signal(signum)
        process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then
    deadline = time.monotonic() + 5  # a reaped child's /proc entry may linger a moment
    while time.monotonic() < deadline and any(is_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not [pid for pid in children if is_alive(pid)], log.read_text()
    assert process.returncode == 128 + signum, log.read_text()
    text = log.read_text()
    assert "nothing of it can be resumed" in text and "start again: dropq enrich" in text
    assert "Traceback" not in text


def test_an_interrupted_local_run_on_a_private_redis_says_that_running_again_costs_credits_again(
    tmp_path: Path, sandbox: Any
) -> None:
    """With an API key but no Redis, the job lived in the private Redis: the message says a rerun is paid again."""
    # Given: the API (here the test's sandbox, as a real API would be) answers; no Redis at REDIS_URL
    sandbox.configure(processing_min_s=20, processing_max_s=20)
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(10)))
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env |= {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DROPCONTACT_API_URL": sandbox.url,
            "DROPCONTACT_API_KEY": sandbox.api_key, **FAST_POLLING}  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "dropq", "enrich", str(source), "--local", "--job-id", "paid-twice"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_deliver_sigint,
        )  # fmt: skip
    try:
        _wait_for(log, "sent 10/10", process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not sandbox.stats()["batches_received"]:
            time.sleep(0.05)
        # When: Ctrl-C
        process.send_signal(signal.SIGINT)
        process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then
    text = log.read_text()
    assert process.returncode == 130, text
    assert "its private Redis, which held the job, is gone" in text
    assert f"dropq enrich {source}" in text and "--local --job-id paid-twice" in text
    assert "starts the job over" in text and "costs credits again (" in text
