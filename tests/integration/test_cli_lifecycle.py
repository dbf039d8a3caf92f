"""A ``dropq enrich --local`` run ended by a signal leaves nothing behind, and says truly how to go on."""

from __future__ import annotations

import csv
import os
import re
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


def _signal_mid_run(tmp_path: Path, signum: signal.Signals) -> tuple[subprocess.Popen[bytes], set[int], Path]:
    """A --local run that started the sandbox, a private Redis and a worker and sent its job, then ``signum``."""
    log = tmp_path / "stderr.txt"
    process = _start_local_run(tmp_path, log)
    try:
        _wait_for(log, "local worker process(es)", process)
        _wait_for(log, "sent 10/10", process)
        children = descendants(process.pid)
        assert len(children) >= 3, children  # the sandbox, redis-server, the worker (and what it forked)
        process.send_signal(signum)
        process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process, children, log


def _survivors(children: set[int], within_s: float) -> list[int]:
    """The children still alive after ``within_s`` (a reaped child's /proc entry may linger a moment)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(is_alive(pid) for pid in children):
        time.sleep(0.05)
    return [pid for pid in children if is_alive(pid)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_a_local_run_and_every_process_it_started(tmp_path: Path, signum: signal.Signals) -> None:
    """SIGTERM or SIGHUP mid-run: sandbox, private Redis and workers all exit; 128 + signal; a true message."""
    process, children, log = _signal_mid_run(tmp_path, signum)
    assert not _survivors(children, within_s=5), log.read_text()
    assert process.returncode == 128 + signum, log.read_text()
    text = log.read_text()
    assert "nothing of it can be resumed" in text and "start again: dropq enrich" in text
    assert "Traceback" not in text


def test_a_killed_local_run_takes_every_process_it_started_with_it(tmp_path: Path) -> None:
    """SIGKILL (no clean-up can run): the kernel sends each child SIGTERM (PR_SET_PDEATHSIG); none is left,
    each stopping on its own SIGTERM (the worker's warm shutdown included)."""
    _, children, log = _signal_mid_run(tmp_path, signal.SIGKILL)
    assert not _survivors(children, within_s=30), log.read_text()


def test_an_interrupted_local_run_on_a_private_redis_resumes_from_the_folder_it_names(
    tmp_path: Path, sandbox: Any
) -> None:
    """With an API key but no Redis: Ctrl-C keeps the private Redis's data in a folder; the command it prints
    resumes the job from there, without sending (or paying for) a row again, and removes the folder."""
    # Given: the API (here the test's sandbox, standing for the real one) answers; no Redis at REDIS_URL
    sandbox.configure(processing_min_s=4, processing_max_s=4)
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(10)))
    output = tmp_path / "out.csv"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env |= {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DROPCONTACT_API_URL": sandbox.url,
            "DROPCONTACT_API_KEY": sandbox.api_key, **FAST_POLLING}  # fmt: skip
    command = [sys.executable, "-m", "dropq", "enrich", str(source), "-o", str(output), "--local"]
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--job-id", "paid-once"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_deliver_sigint,
        )  # fmt: skip
    try:
        _wait_for(log, "sent 10/10", process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not sandbox.stats()["batches_received"]:
            time.sleep(0.05)
        # When: Ctrl-C while the batch is at the API
        process.send_signal(signal.SIGINT)
        process.wait(timeout=45)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert process.returncode == 130, text
    kept = Path(re.search(r"its private Redis keeps the job in (\S+)\.\n", text).group(1))  # type: ignore[union-attr]
    assert kept.is_dir() and any(kept.iterdir()), text
    assert f"go on: dropq enrich {source} -o {output} --local --job-id paid-once" in text
    assert not output.exists()
    # Then: the printed command finishes the job from the folder
    again = subprocess.run(
        [*command, "--job-id", "paid-once", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=80,
        check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"with the data an interrupted run kept in {kept}" in again.stderr
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Last Name"] for r in rows] == [f"Doe{i}" for i in range(10)]
    assert all(r["status"] in ("enriched", "not_found") for r in rows), rows
    assert sandbox.stats()["batches_received"] == 1, "a row was sent (and paid for) twice"
    assert not kept.exists()
