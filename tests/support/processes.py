"""Real Celery worker processes for tests, started as ``celery -A dropq worker`` (no ``-Q`` unless a test asks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from celery import Celery

ROOT = Path(__file__).resolve().parents[2]


def client_app(broker_url: str, backend_url: str | None = None) -> Celery:
    """A Celery app that knows nothing of ours: what another application would use."""
    app = Celery("tests-client", broker=broker_url, backend=backend_url or broker_url)
    # The one line of dropq's README that another application adds to its config.
    app.conf.update(task_routes={"dropq.*": {"queue": "dropq.produce"}})
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    return app


class WorkerProcess:
    """One ``celery worker`` subprocess with its own environment and log file."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        concurrency: int = 2,
        pool: str = "threads",
        queues: str | None = None,
        name: str = "w1",
    ) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.env.setdefault("DROPQ_LOG_FORMAT", "json")
        self.concurrency = concurrency
        self.pool = pool
        self.queues = queues
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"dropq-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait_s: float = 30.0) -> WorkerProcess:
        """Start the worker and wait until it answers a ping."""
        args = [
            sys.executable, "-m", "celery", "-A", "dropq", "worker",
            *(["-Q", self.queues] if self.queues else []), "-c", str(self.concurrency), "-P", self.pool,
            "-n", f"{self.name}@%h", "--without-mingle", "--without-gossip", "-l", "info",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        broker = self.env.get("CELERY_BROKER_URL") or self.env["REDIS_URL"]
        app = client_app(broker, self.env["REDIS_URL"])
        deadline = time.monotonic() + wait_s
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.output()}")
                replies = app.control.ping(destination=[self._hostname()], timeout=0.5)
                if replies:
                    return self
        finally:
            app.close()
        raise RuntimeError(f"worker did not answer within {wait_s}s:\n{self.output()}")

    def _hostname(self) -> str:
        return f"{self.name}@{os.uname().nodename}"

    def output(self) -> str:
        """Every whole line the worker wrote so far (a line still being written would read as cut JSON)."""
        text = Path(self.log.name).read_text(errors="replace")
        return text[: text.rfind("\n") + 1] if self.process is not None and self.process.poll() is None else text

    def is_running(self) -> bool:
        """Whether the worker's main process is still alive."""
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to the whole process group (the main process and its pool children)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully, then forcefully."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def parents() -> dict[int, int]:
    """The parent of every living process (Linux ``/proc``; zombies left out)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":
            found[int(entry.name)] = int(fields[1])
    return found


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``, at any depth (a new session does not hide one)."""
    of = parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in of.items() if parent in frontier} - found
        found |= frontier
    return found


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"
