"""The sandbox as a process of its own (``dropq sandbox``), for benchmarks that must not judge it from a busy process.

An in-process ``SandboxServer`` shares the benchmark's GIL: while the benchmark samples, starts
workers or serialises a job, the sandbox's event loop waits, and the arrival it then stamps is
late. Late stamps bunch requests that were sent apart, so the sandbox may count more than N in a
second (and answer 429) although the client never sent that many. ``SandboxProcess`` runs the same
emulator with ``python -m dropq sandbox`` and offers what the benchmarks use of ``SandboxServer``
(``url``, ``api_key``, ``reset()``, ``stats()``), over the control endpoints.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import requests

from dropq.dropcontact.sandbox import SandboxConfig
from dropq.dropcontact.sandbox.config import env_name
from dropq.workers.embedded import free_port

__all__ = ["SandboxProcess"]

ROOT = Path(__file__).resolve().parents[1]
# How long the process may take to answer its first request.
_START_TIMEOUT_S = 30.0
# How long it may take to exit after SIGTERM.
_STOP_TIMEOUT_S = 10.0
# The control key's header (dropcontact/sandbox/app.py).
_CONTROL_HEADER = "X-Sandbox-Control-Key"


class SandboxProcess:
    """``dropq sandbox`` in a subprocess, configured from a ``SandboxConfig`` (its host and port are ignored).

    Args:
        config: the knobs, passed as ``DROPQ_SANDBOX_*`` variables.
        log: where the process writes its output.
    """

    def __init__(self, config: SandboxConfig, log: Path) -> None:
        self.config = config
        self.log = log
        self.port = free_port()
        self.control_key = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None
        self._session = requests.Session()
        self._session.headers[_CONTROL_HEADER] = self.control_key

    @property
    def url(self) -> str:
        """The base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_key(self) -> str:
        """The one key the sandbox accepts."""
        return self.config.api_key

    def start(self) -> SandboxProcess:
        """Start the process; return once it answers."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        knobs = {**asdict(self.config), "host": "127.0.0.1", "port": self.port, "control_key": self.control_key}
        for name, value in knobs.items():
            env[env_name(name)] = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dropq", "sandbox"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dropq sandbox exited: {self.log.read_text()[-2000:]}")
            try:
                self.stats()
                return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dropq sandbox did not answer")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        self._session.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def reset(self, **changes: Any) -> SandboxProcess:
        """Forget everything seen and go back to the starting knobs, with ``changes`` applied."""
        answer = self._session.post(f"{self.url}/_sandbox/reset", json=changes, timeout=10)
        answer.raise_for_status()
        return self

    def stats(self) -> dict[str, Any]:
        """What the sandbox saw since the last reset."""
        answer = self._session.get(f"{self.url}/_sandbox/stats", timeout=10)
        answer.raise_for_status()
        stats: dict[str, Any] = answer.json()
        return stats

    def processes(self) -> list[psutil.Process]:
        """The sandbox's process, for CPU figures ([] once it is gone)."""
        try:
            return [psutil.Process(self.process.pid)] if self.process is not None else []
        except psutil.Error:
            return []

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
