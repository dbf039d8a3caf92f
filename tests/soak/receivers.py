"""The soak's stand-ins for another application: an HTTP receiver for the ``http`` destination, and a callback drain.

``OutcomeReceiver`` is a real HTTP server on 127.0.0.1 and a free port, in a
thread; it counts, per job, how many POSTs carried each row index, and fails
a share of the POSTs with 503 while told to (a seeded generator draws which).
It never logs a body. ``drain_callbacks`` takes the messages a job's Celery
callback left on the caller's queue with kombu, as the caller's own worker
would, and counts the rows and ``on_done`` announcements per job.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import kombu

__all__ = ["OutcomeReceiver", "CallbackCounts", "drain_callbacks", "declare_callback_queue", "CALLBACK_QUEUE"]

# The caller's queue and task names: another application's, never dropq's.
CALLBACK_QUEUE = "soak-crm"
CALLBACK_TASK = "soak.enriched"
ON_DONE_TASK = "soak.job_done"


class OutcomeReceiver:
    """An HTTP receiver that counts the rows each POST carries, per job.

    Args:
        seed: seeds the draw of which POSTs fail while ``failure_probability`` is set.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.failure_probability = 0.0
        self.posts = 0
        self.refused = 0
        self._counts: dict[str, Counter[int]] = defaultdict(Counter)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._receive(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                # Bodies hold contact data; the soak prints counts only.
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="soak-receiver", daemon=True)

    @property
    def url(self) -> str:
        """Where the destination POSTs."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/outcomes"

    def _receive(self, body: bytes) -> int:
        with self._lock:
            self.posts += 1
            if self.failure_probability and self._rng.random() < self.failure_probability:
                self.refused += 1
                return 503
            try:
                payload = json.loads(body)
                job_id = str(payload["job_id"])
                indexes = [int(record["index"]) for record in payload["records"]]
            except (ValueError, KeyError, TypeError):
                return 400
            self._counts[job_id].update(indexes)
            return 200

    def counts(self, job_id: str) -> dict[int, int]:
        """Index -> POSTs that carried it, for one job."""
        with self._lock:
            return dict(self._counts.get(job_id, {}))

    def reset(self, seed: int) -> None:
        """Forget every count and stop failing, for the next schedule."""
        with self._lock:
            self._rng = random.Random(seed)
            self.failure_probability = 0.0
            self.posts = 0
            self.refused = 0
            self._counts.clear()

    def __enter__(self) -> OutcomeReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class CallbackCounts:
    """What the callback queue held: per job, index -> messages that carried it, and ``on_done`` messages."""

    records: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    on_done: Counter[str] = field(default_factory=Counter)
    other: int = 0


def _queue() -> kombu.Queue:
    # What Celery declares for a queue named only by send_task(queue=...): a direct exchange of the same name.
    return kombu.Queue(CALLBACK_QUEUE, kombu.Exchange(CALLBACK_QUEUE, type="direct"), routing_key=CALLBACK_QUEUE)


def declare_callback_queue(broker_url: str) -> None:
    """Declare the caller's queue, as the caller's worker would on start."""
    with kombu.Connection(broker_url, connect_timeout=5) as conn:
        _queue().bind(conn.default_channel).declare()


def drain_callbacks(broker_url: str) -> CallbackCounts:
    """Take every message on the caller's queue and count what the callbacks carried."""
    counts = CallbackCounts()
    with kombu.Connection(broker_url, connect_timeout=5) as conn:
        queue = _queue()(conn.default_channel)
        while (message := queue.get(no_ack=True, accept=["json"])) is not None:
            # Celery's message protocol 2: the body is [args, kwargs, embed], the task name a header.
            _, kwargs, _ = message.payload
            task = message.headers.get("task")
            if task == CALLBACK_TASK:
                counts.records[str(kwargs["job_id"])].update(int(r["index"]) for r in kwargs["records"])
            elif task == ON_DONE_TASK:
                counts.on_done[str(kwargs["job_id"])] += 1
            else:
                counts.other += 1
    return counts
