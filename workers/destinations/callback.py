"""The job's Celery callback: ``callback.task`` gets each unit's outcomes, on the caller's queue.

Delivery is at least once: a worker killed between sending and recording the
delivery sends that unit again, so a callback should be idempotent on
``(job_id, record index)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

from dropq.workers.destinations.base import DestinationError

__all__ = ["CallbackDestination", "CALLBACK_NAME"]

CALLBACK_NAME = "callback"


class CallbackDestination:
    """Sends ``{"job_id", "records"}`` to the caller's task.

    Args:
        app: the Celery app whose broker the caller listens on.
        task: the caller's task name.
        queue: the caller's queue (dropq.enrich refuses a callback without one).
    """

    name = CALLBACK_NAME

    def __init__(self, app: Celery, task: str, queue: str | None) -> None:
        self._app = app
        self._task = task
        self._queue = queue

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Send the outcomes as one message; contact data is hidden from Flower's argument view."""
        try:
            self._app.send_task(
                self._task,
                kwargs={"job_id": job_id, "records": list(outcomes)},
                queue=self._queue,
                kwargsrepr=f"{{'job_id': {job_id!r}, 'records': <{len(outcomes)} records>}}",
            )
        except Exception as exc:
            # Whatever the transport raises (after a broker restart even AttributeErrors): try again later.
            raise DestinationError(self.name, f"could not send {self._task}: {type(exc).__name__}: {exc}") from exc

    def finish(self, job_id: str) -> None:
        """The summary goes to ``callback.on_done``, sent by the finish stage."""
