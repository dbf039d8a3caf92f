"""What a worker process records for the metrics besides the job scripts: its API requests and that it lives.

Requests are counted in memory and flushed to Redis (one pipelined ``HINCRBY`` per field) at most
once a second by a daemon thread, so the hot path costs no round trip; a process killed with
SIGKILL loses at most its last second. Each worker's main process also beats every
``HEARTBEAT_S`` in ``keys.workers_key`` (worker name -> Redis time), which is how ``dropq metrics``
counts the workers alive whatever the pool and the number of machines.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from collections import Counter
from typing import Any

import redis
import structlog
from celery import signals

from dropq.workers import keys
from dropq.workers.metrics import fields

__all__ = ["ApiCallCounter", "Heartbeat", "install", "FLUSH_EVERY_S", "HEARTBEAT_S", "ALIVE_WITHIN_S"]

_log = structlog.get_logger(__name__)

# Counts wait in memory at most this long before they reach Redis.
FLUSH_EVERY_S = 1.0
# A worker's main process says it lives this often...
HEARTBEAT_S = 5.0
# ...and counts as alive while its last beat is younger than this (three beats missed: gone).
ALIVE_WITHIN_S = 3 * HEARTBEAT_S
# A worker silent for this long leaves the set.
_FORGET_AFTER_MS = 24 * 3600 * 1000

# Every counter of this process, flushed once more when it stops.
_live: weakref.WeakSet[ApiCallCounter] = weakref.WeakSet()


class ApiCallCounter:
    """Counts this process's API requests by method and outcome; ``DropcontactClient(on_answer=...)`` calls it.

    Args:
        client: Redis.
        account: the account's short hash (``keys.account_id``).
        flush_every_s: the longest a count waits in memory.
    """

    def __init__(self, client: redis.Redis, account: str, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self._redis = client
        self._key = keys.api_calls_key(account)
        self._flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        _live.add(self)

    def __call__(self, method: str, status: int | None) -> None:
        """Count one request (its method, and its HTTP status or None for no answer)."""
        field = fields.request_field(method, status)
        with self._lock:
            self._pending[field] += 1
            if self._thread is None:
                # Started by the first request, so in the process (after a fork) that counts.
                self._thread = threading.Thread(target=self._run, name="dropq-metrics-flush", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Add the counts waiting in memory to Redis; on a Redis error they wait for the next flush."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for field, amount in pending.items():
                pipe.hincrby(self._key, field, amount)
            pipe.execute()
        except (redis.RedisError, OSError):
            with self._lock:
                self._pending.update(pending)

    def close(self) -> None:
        """Stop the flushing thread and flush what is left."""
        self._stop.set()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_every_s):
            self.flush()


def flush_all() -> None:
    """Flush every counter of this process (at exit: a warm shutdown loses no count)."""
    for counter in list(_live):
        counter.flush()


class Heartbeat:
    """A daemon thread that beats for one worker in ``keys.workers_key`` until stopped.

    Args:
        client: Redis.
        name: the worker's name (Celery's node name, ``w1@host``): no secret, no contact data.
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self._redis = client
        self.name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dropq-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat now, then every ``HEARTBEAT_S``."""
        self._thread.start()

    def beat(self) -> None:
        """Say this worker lives now (Redis time), and forget workers silent for a day."""
        seconds, micros = self._redis.time()
        now_ms = seconds * 1000 + micros // 1000
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(keys.workers_key(), {self.name: now_ms})
        pipe.zremrangebyscore(keys.workers_key(), "-inf", now_ms - _FORGET_AFTER_MS)
        pipe.execute()

    def stop(self) -> None:
        """Stop beating and leave the set: a worker stopped on purpose is not one lost."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError, OSError):
            self._redis.zrem(keys.workers_key(), self.name)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
            except (redis.RedisError, OSError) as exc:
                _log.warning("heartbeat_skipped", error=type(exc).__name__)
            if self._stop.wait(HEARTBEAT_S):
                return


def install(redis_url: str) -> None:
    """Beat from each worker's main process once it is ready; flush the request counts when a process stops."""
    started: list[Heartbeat] = []
    atexit.register(flush_all)

    @signals.worker_ready.connect(weak=False)
    def _start(sender: Any = None, **_: Any) -> None:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        heartbeat = Heartbeat(client, str(getattr(sender, "hostname", None) or "worker"))
        heartbeat.start()
        started.append(heartbeat)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_: Any) -> None:
        flush_all()
        for heartbeat in started:
            heartbeat.stop()

    @signals.worker_process_shutdown.connect(weak=False)
    def _flush(**_: Any) -> None:
        flush_all()
