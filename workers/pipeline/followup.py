"""A message a stage wants sent once it is done: a task name, its arguments and a countdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from dropq.errors import WorkerError

__all__ = [
    "Followup",
    "BrokerUnavailableError",
    "send_followup",
    "submit",
    "poll",
    "sink",
    "deliver",
    "finish",
    "produce",
]


class BrokerUnavailableError(WorkerError, ConnectionError):
    """A message could not be sent: the broker is away (or the connection to it is broken)."""


@dataclass(frozen=True, slots=True)
class Followup:
    """One message to send.

    Args:
        task: the task name (``dropq.*``).
        kwargs: JSON arguments.
        countdown_s: delay before it runs (the sender caps it below the broker's visibility timeout).
        kwargsrepr: what Flower and the logs show instead of the arguments (contact data stays hidden).
        queue: the queue, for messages to another application's tasks; ours are routed by name.
        inline: a short step the sending task may run itself instead of sending it (``tasks._send``):
            a small batch's pooling, a carried batch's sink, a delivery to a local file or stream. Its
            work is watched by its state already, so a worker that dies inside it loses nothing.
    """

    task: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown_s: float = 0.0
    kwargsrepr: str | None = None
    queue: str | None = None
    inline: bool = False


def produce(job_id: str, offset: int, checked_through: int | None = None, countdown_s: float = 0.0) -> Followup:
    """Produce the part parked at ``offset``: a wake-up, or (with ``checked_through``) its periodic check."""
    kwargs: dict[str, Any] = {"job_id": job_id, "offset": offset}
    if checked_through is not None:
        kwargs["checked_through"] = checked_through
    return Followup("dropq.produce", kwargs, countdown_s)


def submit(batch_id: str, seq: int, countdown_s: float = 0.0, *, inline: bool = False) -> Followup:
    """Submit (or re-try submitting) a batch."""
    return Followup("dropq.submit", {"batch_id": batch_id, "seq": seq}, countdown_s, inline=inline)


def poll(batch_id: str, seq: int, countdown_s: float = 0.0, *, early: bool = False) -> Followup:
    """Look for a batch's results (``early``: ahead of the schedule, only if the budget still has room then)."""
    kwargs: dict[str, Any] = {"batch_id": batch_id, "seq": seq}
    if early:
        kwargs["early"] = True
    return Followup("dropq.poll", kwargs, countdown_s)


def sink(batch_id: str, *, inline: bool = False) -> Followup:
    """Join a batch's results and fan them out."""
    return Followup("dropq.sink", {"batch_id": batch_id}, inline=inline)


def deliver(
    job_id: str, unit_id: str, destination: str, attempt: int = 0, countdown_s: float = 0.0, *, inline: bool = False
) -> Followup:
    """Write one unit of outcomes to one destination."""
    return Followup(
        "dropq.deliver",
        {"job_id": job_id, "unit_id": unit_id, "destination": destination, "attempt": attempt},
        countdown_s,
        inline=inline,
    )


def finish(job_id: str) -> Followup:
    """Finish and announce a job that looks complete."""
    return Followup("dropq.finish", {"job_id": job_id})


def send_followup(app: Celery, item: Followup, max_countdown_s: float) -> None:
    """Send one follow-up through ``app`` (its routes pick our tasks' queues).

    Args:
        app: the Celery app.
        item: the message.
        max_countdown_s: the cap on its countdown (below the broker's visibility timeout).

    Raises:
        BrokerUnavailableError: the message could not be sent.
    """
    try:
        app.send_task(
            item.task,
            kwargs=item.kwargs,
            countdown=min(max(0.0, item.countdown_s), max_countdown_s) or None,
            kwargsrepr=item.kwargsrepr,
            queue=item.queue,
        )
    except Exception as exc:
        # Whatever the transport raises (connection errors, and after a broker restart even
        # AttributeErrors from a closed channel), the caller must wait and try again, not fail.
        raise BrokerUnavailableError(f"could not send {item.task}: {type(exc).__name__}: {exc}") from exc
