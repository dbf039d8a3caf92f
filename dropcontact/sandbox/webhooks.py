"""The background pusher: posts finished batches' results to their webhook URLs.

One daemon thread per sandbox. It sleeps until the next batch is due (or a
subscription's throttle frees a slot, or a submit wakes it), takes the due
pushes from the state under the runtime's lock, and posts each one outside the
lock with ``requests`` and explicit timeouts, so request handling never waits
on a receiver. A push is one attempt: failures are counted, not retried (the
docs document no retry policy).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from dropq.dropcontact.sandbox.outbox import WebhookDelivery
    from dropq.dropcontact.sandbox.runtime import SandboxRuntime

__all__ = ["WebhookPusher"]

# The longest the pusher sleeps without looking at the state, in case a wake-up was missed.
_IDLE_WAIT_S = 0.5
_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": "dropq-sandbox"}


class WebhookPusher:
    """Posts webhook deliveries from a daemon thread.

    Args:
        runtime: the sandbox whose state holds the deliveries.
    """

    def __init__(self, runtime: SandboxRuntime) -> None:
        self._runtime = runtime
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="dropq-sandbox-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it, at most ``timeout_s``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        """Have the thread look at the state now (a batch was submitted or a target changed)."""
        self._wake.set()

    def _run(self) -> None:
        runtime = self._runtime
        with requests.Session() as session:
            while not self._stop.is_set():
                self._wake.clear()
                with runtime.lock:
                    generation = runtime.generation
                    deliveries = runtime.state.take_deliveries(runtime.clock())
                    wake_at = runtime.state.next_wake_at()
                    timeout_s = runtime.state.config.webhook_timeout_s
                for delivery in deliveries:
                    self._deliver(session, delivery, timeout_s, generation)
                if deliveries:
                    continue
                wait_s = _IDLE_WAIT_S if wake_at is None else min(_IDLE_WAIT_S, max(0.0, wake_at - runtime.clock()))
                self._wake.wait(wait_s)

    def _deliver(self, session: requests.Session, delivery: WebhookDelivery, timeout_s: float, generation: int) -> None:
        for _ in range(delivery.copies):
            try:
                response = session.post(
                    delivery.url, data=delivery.body, headers=_JSON_HEADERS, timeout=(timeout_s, timeout_s)
                )
                is_delivered = 200 <= response.status_code < 300
                response.close()
            except requests.RequestException:
                is_delivered = False
            with self._runtime.lock:
                # A reset in between starts new stats: an older push must not count in them.
                if self._runtime.generation == generation:
                    self._runtime.state.record_push(is_delivered=is_delivered)
