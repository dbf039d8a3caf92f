"""The ``dropq.enrich`` calls of a schedule: each job's rows, each part's arguments, and their sending.

Calls go out as another application's would: ``client_app(...).send_task``
with the README's routing line and nothing of dropq's code. A publish that
fails while Redis restarts is tried again (a call sent twice counts once), and
a call that has not even started after ``CALLER_TIMEOUT_S`` is sent again, as
a caller retrying after a timeout would: a message can be lost with the
broker (a worker killed, or Redis stopped, between kombu's pop and its
bookkeeping of unacknowledged messages), and only the caller holds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import redis
from celery.result import AsyncResult

from tests.soak.plan import JobPlan
from tests.soak.receivers import CALLBACK_QUEUE, CALLBACK_TASK, ON_DONE_TASK
from tests.support.contacts import make_contacts
from tests.support.processes import client_app

__all__ = ["job_contacts", "part_kwargs", "EnrichSender"]

# How long a publish keeps trying while Redis is away.
PUBLISH_DEADLINE_S = 30.0
# The pause between two tries.
_PUBLISH_RETRY_S = 0.3
# A call not started after this long is sent again (the README: retry after a timeout, same job_id).
CALLER_TIMEOUT_S = 15.0


def job_contacts(job: JobPlan) -> list[dict[str, Any]]:
    """The job's rows: valid, invalid and duplicate ones, with ``crm_id`` unique over the whole soak.

    A unique ``crm_id`` keeps the sandbox's duplicate-POST count honest: two jobs' batches never look alike.
    """
    rows = make_contacts(
        job.records, invalid_every=job.invalid_every, duplicate_every=job.duplicate_every, seed=job.contact_seed
    )
    for index, row in enumerate(rows):
        row["custom_fields"] = {"crm_id": f"{job.job_id}:{index}"}
    return rows


def part_kwargs(job: JobPlan, contacts: list[dict[str, Any]], part_index: int) -> dict[str, Any]:
    """The arguments of the call that sends one part of a job (a one-part job leaves offset and final out)."""
    part = job.parts[part_index]
    kwargs: dict[str, Any] = {
        "contacts": contacts[part.offset : part.offset + part.count],
        "job_id": job.job_id,
        "destinations": list(job.destinations),
    }
    if len(job.parts) > 1:
        kwargs.update(offset=part.offset, final=part.final)
    if job.has_callback:
        kwargs["callback"] = {"task": CALLBACK_TASK, "queue": CALLBACK_QUEUE, "on_done": ON_DONE_TASK}
    return kwargs


class EnrichSender:
    """Publishes ``dropq.enrich`` calls from one background thread, so the runner's loop never waits on one.

    Args:
        broker_url: the schedule's Redis.
    """

    def __init__(self, broker_url: str) -> None:
        self._app = client_app(broker_url)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-sender")
        self._calls: list[tuple[str, Future[AsyncResult | None]]] = []
        # label -> (kwargs, when last sent): what a caller keeps to retry a call
        self._kept: dict[str, tuple[dict[str, Any], float]] = {}
        self.retried = 0
        self._started = time.monotonic()
        self.unsent: list[str] = []
        # label -> (seconds since the sender started when the publish went through, tries it took)
        self.published: dict[str, tuple[float, int]] = {}

    def send(self, kwargs: dict[str, Any], label: str) -> Future[AsyncResult | None]:
        """Publish a call in the background; the future gives its result handle (None if it never went out)."""
        future = self._pool.submit(self._publish, kwargs, label)
        self._calls.append((label, future))
        self._kept[label] = (kwargs, time.monotonic())
        return future

    def retry_unstarted(self) -> None:
        """Send again every call that has not started within ``CALLER_TIMEOUT_S`` of its last send."""
        now = time.monotonic()
        for label, future in list(self._calls):
            kwargs, sent_at = self._kept[label]
            if now - sent_at < CALLER_TIMEOUT_S or not future.done() or future.result() is None:
                continue
            try:
                state = future.result().state
            except (redis.RedisError, OSError):
                continue
            if state == "PENDING" and not self._is_retried(label):
                self.retried += 1
                self.send(kwargs, f"{label} (caller retry)")
            self._kept[label] = (kwargs, now)

    def _is_retried(self, label: str) -> bool:
        return any(other == f"{label} (caller retry)" for other, _ in self._calls)

    def _publish(self, kwargs: dict[str, Any], label: str) -> AsyncResult | None:
        deadline = time.monotonic() + PUBLISH_DEADLINE_S
        tries = 0
        while True:
            tries += 1
            try:
                result = self._app.send_task("dropq.enrich", kwargs=kwargs)
                self.published[label] = (round(time.monotonic() - self._started, 2), tries)
                return result
            except Exception as exc:
                # Whatever the transport raises while Redis restarts: try again, as a caller would.
                if time.monotonic() > deadline:
                    self.unsent.append(f"{label}: {type(exc).__name__}")
                    return None
                time.sleep(_PUBLISH_RETRY_S)

    def wait_answered(self, futures: Iterable[Future[AsyncResult | None]], timeout_s: float) -> None:
        """Wait, at most ``timeout_s`` in all, until these calls are answered (succeeded or failed)."""
        deadline = time.monotonic() + timeout_s
        for future in futures:
            try:
                result = future.result(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                return
            while result is not None and time.monotonic() < deadline:
                try:
                    if result.ready():
                        break
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.1)

    def call_states(self) -> list[tuple[str, str, str]]:
        """Each call as ``(label, task id, state)``: SUCCESS, FAILURE, PENDING (never run), ...; UNSENT if never out."""
        states = []
        for label, future in self._calls:
            result = future.result()
            if result is None:
                states.append((label, "", "UNSENT"))
                continue
            try:
                states.append((label, result.id, str(result.state)))
            except (redis.RedisError, OSError) as exc:
                states.append((label, result.id, f"unknown ({type(exc).__name__})"))
        return states

    def failed_calls(self) -> list[str]:
        """The calls whose task failed, as ``task id: exception class`` (a resent call must succeed too)."""
        failed = []
        for _, future in self._calls:
            result = future.result()
            try:
                if result is not None and result.failed():
                    failed.append(f"{result.id}: {type(result.result).__name__}")
            except (redis.RedisError, OSError):
                continue
        return failed

    def close(self) -> None:
        """Wait for the calls still being published, and close the client."""
        self._pool.shutdown(wait=True)
        self._app.close()
