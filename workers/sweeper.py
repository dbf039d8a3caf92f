"""Run the sweep (``pipeline.sweep``) from every worker's main process; one of them at a time does it.

A thread started when the worker is ready wakes every few seconds, takes a
Redis lock that expires by itself (so a killed worker never blocks the
others), sweeps and sends what the sweep found. Workers on many machines
share the lock: one sweep per interval for the whole fleet.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
import structlog
from celery import Celery, signals

from dropq.config.celeryconfig import sweep_interval_s
from dropq.config.settings import Settings
from dropq.workers import keys
from dropq.workers.pipeline.dispatch import dispatch
from dropq.workers.pipeline.sweep import sweep
from dropq.workers.runtime import Runtime, build_runtime

__all__ = ["Sweeper", "install"]

_log = structlog.get_logger(__name__)


class Sweeper:
    """A daemon thread that sweeps while the worker runs.

    Args:
        runtime: the main process's own runtime (never shared with the pool's children).
        app: the Celery app to send through.
    """

    def __init__(self, runtime: Runtime, app: Celery) -> None:
        self._rt = runtime
        self._app = app
        self.interval_s = sweep_interval_s(runtime.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dropq-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop at the next wake-up."""
        self._stop.set()

    def sweep_once(self) -> int:
        """Sweep now if no other worker holds the lock; returns the messages sent."""
        lock_ms = int(self.interval_s * 1000)
        if not self._rt.redis.set(keys.sweep_lock_key(), "1", nx=True, px=lock_ms):
            return 0
        followups = sweep(self._rt)
        for item in followups:
            dispatch(self._rt, self._app, item)
        return len(followups)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep_once()
            except (redis.RedisError, OSError) as exc:
                # Redis or the broker is away: the next wake-up tries again.
                _log.warning("sweep_skipped", error=type(exc).__name__)
            except Exception:
                # Anything else (corrupt state, a bug) must not end the thread: log it and sweep again later.
                _log.exception("sweep_failed")


def install(settings: Settings, app: Celery) -> None:
    """Start a sweeper in each worker's main process once it is ready."""
    started: list[Sweeper] = []

    @signals.worker_ready.connect(weak=False)
    def _start(**_: Any) -> None:
        sweeper = Sweeper(build_runtime(settings, app), app)
        sweeper.start()
        started.append(sweeper)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_: Any) -> None:
        for sweeper in started:
            sweeper.stop()
