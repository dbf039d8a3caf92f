"""The progress display of ``dropq enrich``: one line that fits the terminal, plain lines off one, stdout for data."""

from __future__ import annotations

import csv
import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_enrich import _SCRUBBED, run_dropq
from tests.support.pipeline import worker_env
from tests.support.processes import ROOT

pytestmark = pytest.mark.timeout(90)

# An escape sequence (colours, erase-line, cursor moves) as rich writes them.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A cursor moved up: the display took more than one line.
_CURSOR_UP = re.compile(r"\x1b\[[0-9]*A")


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """A worker on the private Redis and a sandbox whose batches take a second or two: several frames to draw."""
    sandbox.configure(processing_min_s=1.0, processing_max_s=2.0)
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=4)
    return env


def _leads(tmp_path: Path, rows: int = 120) -> Path:
    source = tmp_path / "leads.csv"
    source.write_text("First Name,Last Name,Company\n" + "".join(f"Ann,Doe{i},Acme{i % 5}\n" for i in range(rows)))
    return source


def _run_in_terminal(args: list[str], env: dict[str, str], columns: int) -> tuple[int, str, str]:
    """Run ``dropq ARGS`` with stdin and stderr on a pseudo-terminal ``columns`` wide, stdout on a pipe.

    Returns:
        The exit status, what the terminal received, and stdout.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if k not in (*_SCRUBBED, "COLUMNS", "LINES")}
    full_env |= env | {"TERM": "xterm-256color"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dropq", *args],
        cwd=ROOT, env=full_env, stdin=slave, stderr=slave, stdout=subprocess.PIPE,
    )  # fmt: skip
    os.close(slave)
    stdout: list[bytes] = []
    reader = threading.Thread(target=lambda: stdout.append(process.stdout.read() if process.stdout else b""))
    reader.start()
    received = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other end closed: the process is gone
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
        reader.join(timeout=10)
    return process.returncode, received.decode(errors="replace"), b"".join(stdout).decode()


def _frames(terminal: str) -> list[str]:
    """The progress frames drawn: what is between carriage returns and newlines, escapes removed."""
    pieces = re.split(r"[\r\n]", terminal)
    return [_ANSI.sub("", piece) for piece in pieces if "rec/s" in _ANSI.sub("", piece)]


@pytest.mark.parametrize("columns", [80, 50])
def test_at_80_columns_the_progress_stays_on_one_line_and_stdout_is_only_data(
    cli_env: dict[str, str], tmp_path: Path, columns: int
) -> None:
    """Through a pty of 80 (or 50) columns: every frame fits, none moves the cursor up; stdout is the CSV alone."""
    # When
    status, terminal, stdout = _run_in_terminal(
        ["enrich", str(_leads(tmp_path)), "-o", "-", "--part-size", "20"], cli_env, columns
    )
    # Then
    assert status == 0, terminal
    frames = _frames(terminal)
    assert len(frames) >= 3, terminal
    assert max(len(frame.rstrip()) for frame in frames) <= columns, [f for f in frames if len(f.rstrip()) > columns]
    assert not _CURSOR_UP.search(terminal), "the display took more than one line"
    # Records done of the total, the rate, credits and the time left are all shown.
    last = frames[-1]
    assert "120/120" in last and "rec/s" in last and "credits" in last and re.search(r"\d:\d\d", last), last
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert len(rows) == 120 and all(row["status"] for row in rows)
    assert "rec/s" not in stdout and "\x1b" not in stdout


def test_off_a_terminal_the_progress_is_a_plain_line_every_few_seconds(cli_env: dict[str, str], tmp_path: Path) -> None:
    """stderr on a pipe: no escape sequences, no carriage returns, a handful of whole lines, the last one final."""
    done = run_dropq(["enrich", str(_leads(tmp_path)), "-o", str(tmp_path / "out.csv"), "--part-size", "20"], cli_env)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("done ") and " | " in line]
    assert 1 <= len(progress) <= 6, done.stderr
    assert progress[-1].startswith("done 120/120 | sent 120/120 |") and "credits " in progress[-1]
