"""Bring up, for one run on this machine, whatever is missing: a private Redis and workers.

Used by ``dropq demo`` and ``dropq enrich --local``. Everything it starts is
stopped on exit, in reverse order.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from types import TracebackType

from celery import Celery

from config.celeryconfig import WORKER_QUEUES
from config.settings import Settings
from workers.embedded import EmbeddedRedis, is_redis_reachable

__all__ = ["LocalStack"]

# How long local workers may take to answer their first ping.
_WORKER_START_TIMEOUT_S = 60.0


class LocalStack:
    """A private Redis (when none answers) and local worker processes, for the duration of a ``with``.

    Args:
        settings: the process settings; ``stack.settings`` holds the ones actually used.
        echo: where to tell the person what was started.
        workers: worker processes to start (0 to rely on a running fleet).
        extra_env: more environment for the workers (the sandbox URL and key, say).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        echo: Callable[[str], None] = print,
        workers: int = 1,
        concurrency: int = 4,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._echo = echo
        self._workers = workers
        self._concurrency = concurrency
        self._extra_env = dict(extra_env or {})
        self._redis: EmbeddedRedis | None = None
        self._processes: list[subprocess.Popen[bytes]] = []
        self._app: Celery | None = None

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        if not is_redis_reachable(self.settings.redis_url):
            self._redis = EmbeddedRedis().start()
            self._echo(f"no Redis at {self.settings.redis_url}: started a private one at {self._redis.url}")
            self.settings = self.settings.replace(redis_url=self._redis.url, broker_url="")
        env = {"DROPQ_LOG_LEVEL": "warning", **os.environ, **self._extra_env, "REDIS_URL": self.settings.redis_url}
        env["CELERY_BROKER_URL"] = self.settings.effective_broker_url
        for index in range(self._workers):
            args = [
                sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", ",".join(WORKER_QUEUES),
                "-c", str(self._concurrency), "-n", f"local{index}-{os.getpid()}@%h",
                "--without-mingle", "--without-gossip", "-l", "warning",
            ]  # fmt: skip
            self._processes.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, start_new_session=True))
        if self._workers:
            self._wait_for_workers()
            self._echo(f"started {self._workers} local worker process(es)")

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + _WORKER_START_TIMEOUT_S
        app = self.client_app()
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._processes):
                raise RuntimeError("a local worker exited at start; run `dropq worker` to see why")
            if len(app.control.ping(timeout=0.5)) >= self._workers:
                return
        raise RuntimeError(f"local workers did not answer within {_WORKER_START_TIMEOUT_S:.0f}s")

    def client_app(self) -> Celery:
        """A Celery app on this stack's broker and backend (made once)."""
        if self._app is None:
            self._app = Celery(
                "dropq-local", broker=self.settings.effective_broker_url, backend=self.settings.redis_url
            )
            self._app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
        return self._app

    def close(self) -> None:
        """Stop the workers, then the private Redis."""
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        self._processes.clear()
        if self._app is not None:
            self._app.close()
            self._app = None
        if self._redis is not None:
            self._redis.stop()
            self._redis = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
