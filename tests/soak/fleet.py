"""The processes of one schedule: a persistent private Redis, the worker slots, and the webhook receiver.

Every process here is one the soak started, and each is ended by its own
handle (a process group for a worker, a pid for a pool child): nothing is
ever killed by name. A worker the schedule did not kill and that exits anyway
is noted (``unexpected_exits``) and replaced, so the schedule carries on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import redis
import requests

from dropq.workers.embedded import EmbeddedRedis, free_port, is_redis_reachable, stop_process
from tests.support.processes import ROOT, WorkerProcess, parents

__all__ = ["PersistentRedis", "WorkerFleet", "WebhookReceiverProcess"]

# A replacement worker gets this many tries to start (Redis may go away again while it starts).
_START_ATTEMPTS = 4
# How long a worker may take to answer its first ping.
_START_WAIT_S = 30.0
# How long the receiver may take to answer /healthz.
_RECEIVER_START_S = 20.0


class PersistentRedis:
    """A private redis-server with ``appendonly yes``, restarted on the same port and folder.

    ``up`` is set while it serves; a restart clears it for the downtime.

    Args:
        directory: where its files go (they stay there: the append-only file tells what Redis was asked).
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.server = EmbeddedRedis(appendonly=True, directory=str(directory))
        self.up = threading.Event()
        self.restarts = 0

    @property
    def url(self) -> str:
        """The ``redis://`` URL."""
        return self.server.url

    def start(self) -> PersistentRedis:
        """Start it and wait for PING."""
        self.server.start()
        self.up.set()
        return self

    def restart(self, *, clean: bool, downtime_s: float) -> None:
        """Stop it (SHUTDOWN when ``clean``, else SIGKILL), wait ``downtime_s``, start it again on the same files."""
        self.up.clear()
        if clean:
            client = redis.Redis.from_url(self.url, socket_timeout=5)
            try:
                # SHUTDOWN flushes the append-only file, then exits; redis-py swallows the closed connection.
                client.shutdown()
            except redis.RedisError:
                pass
            finally:
                client.close()
            deadline = time.monotonic() + 5
            while is_redis_reachable(self.url, timeout_s=0.1) and time.monotonic() < deadline:
                time.sleep(0.02)
        # Reaps the process (already gone after a clean SHUTDOWN); with appendfsync always, no write is lost.
        self.server.kill()
        time.sleep(downtime_s)
        self.server.start()
        self.restarts += 1
        self.up.set()

    def stop(self) -> None:
        """Stop it (its files stay)."""
        self.up.clear()
        self.server.stop()


def _children(pid: int) -> list[int]:
    """The living pids whose parent is ``pid`` (Linux ``/proc``; none elsewhere)."""
    return sorted(child for child, parent in parents().items() if parent == pid)


class WorkerFleet:
    """Worker slots, each running one ``celery -A dropq worker`` at a time.

    Args:
        env: the workers' environment.
        slots: how many workers run at once.
        concurrency: pool processes per worker.
        tag: a prefix for the workers' names (unique per schedule).
        redis: the Redis the workers use; a worker starts only while it is up.
    """

    def __init__(self, env: Mapping[str, str], slots: int, concurrency: int, tag: str, redis: PersistentRedis) -> None:
        self._env = dict(env)
        self._concurrency = concurrency
        self._tag = tag
        self._redis = redis
        self._lock = threading.Lock()
        self._generation = 0
        self.slots: list[WorkerProcess | None] = [None] * slots
        self.started: list[WorkerProcess] = []
        self.killed: set[int] = set()
        self.unexpected_exits: list[str] = []
        self.start_failures: list[str] = []
        self._starting: dict[int, threading.Thread] = {}

    def _new_worker(self, slot: int) -> WorkerProcess:
        with self._lock:
            self._generation += 1
            name = f"{self._tag}-w{slot}-g{self._generation}"
        worker = WorkerProcess(self._env, concurrency=self._concurrency, pool="processes", name=name)
        self.started.append(worker)
        return worker

    def _start_slot(self, slot: int, delay_s: float) -> None:
        time.sleep(delay_s)
        for attempt in range(_START_ATTEMPTS):
            if not self._redis.up.wait(_START_WAIT_S):
                self.start_failures.append(f"slot {slot}: Redis did not come back within {_START_WAIT_S}s")
                return
            worker = self._new_worker(slot)
            try:
                worker.start(wait_s=_START_WAIT_S)
            except Exception as exc:
                # Redis went away during the start, or the worker died at once: try a fresh one.
                self.start_failures.append(f"slot {slot} attempt {attempt + 1}: {type(exc).__name__}")
                worker.kill()
                continue
            with self._lock:
                self.slots[slot] = worker
            return

    def start_all(self) -> None:
        """Start every slot at once and wait until each worker answers a ping."""
        for slot in range(len(self.slots)):
            self.start_later(slot, 0.0)
        self.join()

    def start_later(self, slot: int, delay_s: float) -> None:
        """Start a worker in ``slot`` after ``delay_s``, in the background."""
        thread = threading.Thread(target=self._start_slot, args=(slot, delay_s), name=f"soak-start-{slot}", daemon=True)
        with self._lock:
            self._starting[slot] = thread
        thread.start()

    def is_starting(self, slot: int) -> bool:
        """Whether a worker is being started in ``slot``."""
        thread = self._starting.get(slot)
        return thread is not None and thread.is_alive()

    def join(self, timeout_s: float = 60.0) -> None:
        """Wait for the workers being started."""
        deadline = time.monotonic() + timeout_s
        for thread in list(self._starting.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def kill(self, slot: int, replace_after_s: float) -> bool:
        """SIGKILL the worker of ``slot`` (its whole process group), and start a replacement later.

        Returns:
            False when the slot had no running worker (nothing was killed).
        """
        with self._lock:
            worker = self.slots[slot]
            if worker is None or not worker.is_running() or self.is_starting(slot):
                return False
            self.slots[slot] = None
            self.killed.add(id(worker))
        worker.kill(signal.SIGKILL)
        self.start_later(slot, replace_after_s)
        return True

    def kill_child(self, slot: int, pick: float) -> bool:
        """SIGKILL one pool process of the worker of ``slot`` (the worker forks another).

        Returns:
            False when there was no such process.
        """
        worker = self.slots[slot]
        if worker is None or worker.process is None or not worker.is_running():
            return False
        children = _children(worker.process.pid)
        if not children:
            return False
        try:
            os.kill(children[min(len(children) - 1, int(pick * len(children)))], signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def check(self) -> None:
        """Note and replace any worker that exited without being killed."""
        for slot, worker in enumerate(self.slots):
            if worker is None or worker.is_running() or self.is_starting(slot):
                continue
            code = worker.process.returncode if worker.process is not None else None
            self.unexpected_exits.append(f"worker {worker.name} exited with {code} (log {worker.log.name})")
            with self._lock:
                self.slots[slot] = None
            self.start_later(slot, 0.0)

    def kill_all(self, logs_dir: Path) -> None:
        """SIGKILL every worker started here (the schedule is observed: nothing they hold matters), keep their logs.

        Args:
            logs_dir: where the workers' log files are moved.
        """
        self.join()
        logs_dir.mkdir(parents=True, exist_ok=True)
        for worker in self.started:
            worker.kill(signal.SIGKILL)
            log = Path(worker.log.name)
            worker.log.close()
            if log.exists():
                shutil.move(log, logs_dir / log.name)


class WebhookReceiverProcess:
    """``dropq webhooks`` on 127.0.0.1 and a free port, the receiver the sandbox pushes results to.

    Args:
        env: the workers' environment (Redis, sandbox); ``DROPQ_WEBHOOK_URL`` is set from the port.
        log_path: where its output goes.
    """

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.unexpected_exits: list[str] = []

    @property
    def url(self) -> str:
        """The receiver's base URL (what ``DROPQ_WEBHOOK_URL`` says)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WebhookReceiverProcess:
        """Start it and wait until ``/healthz`` answers.

        Raises:
            RuntimeError: it did not answer in time.
        """
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dropq", "webhooks", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env={**self.env, "DROPQ_WEBHOOK_URL": self.url}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + _RECEIVER_START_S
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).text == "ok":
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dropq webhooks did not answer within {_RECEIVER_START_S}s (log {self.log_path})")

    def check(self) -> None:
        """Note and restart the receiver if it exited."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(f"webhook receiver exited with {self.process.returncode}")
            self.start()

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process, 10)
