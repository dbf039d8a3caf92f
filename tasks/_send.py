"""Send a stage's follow-up messages through the app (routes pick each task's queue)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import redis
import structlog
from celery import Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from dropq.workers.app import app
from dropq.workers.pipeline.deliver import deliver_unit
from dropq.workers.pipeline.dispatch import dispatch
from dropq.workers.pipeline.followup import BrokerUnavailableError, Followup
from dropq.workers.pipeline.give_up import give_up
from dropq.workers.pipeline.sink import sink_batch
from dropq.workers.pipeline.submit import submit_batch
from dropq.workers.runtime import Runtime, get_runtime

__all__ = ["send", "send_all", "INFRA_ERRORS", "INFRA_RETRY", "STAGE_TASK", "InfraRetryTask", "StageTask"]

_log = structlog.get_logger(__name__)

# Redis or the broker restarting is waiting, not failing: such tasks retry without a limit.
INFRA_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
    BrokerUnavailableError,
)


class InfraRetryTask(Task):  # type: ignore[misc]  # Celery ships no type hints
    """A task whose retry, when it cannot be sent, hands its own message back instead of dropping it.

    Celery's ``retry`` publishes the retry message; when that fails (the broker
    is the Redis that just went away) it raises ``Reject(requeue=False)``, and
    the message is acknowledged and lost: a batch's chain ends there and its
    job never finishes. Requeued instead, the message runs again once the
    broker answers, or comes back after the visibility timeout if even the
    requeue cannot reach it.
    """

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's ``retry``, but a retry that could not be sent requeues the message."""
        try:
            return super().retry(*args, **kwargs)
        except Reject as exc:
            if exc.requeue:
                raise
            _log.warning("retry_not_sent", task_name=self.name, error=type(exc.reason).__name__)
            raise Reject(exc.reason, requeue=True) from exc


INFRA_RETRY = {
    "base": InfraRetryTask,
    "autoretry_for": INFRA_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": None,
}


def send(item: Followup) -> None:
    """Send one follow-up (its watchdog deadline armed first)."""
    dispatch(get_runtime(), app, item)


# The most steps one task runs inline (a shared request's batches, their deliveries); the rest are sent.
MAX_INLINE_STEPS = 2000


def send_all(items: Iterable[Followup]) -> None:
    """Send follow-ups in order; run those marked ``inline`` here instead (their own follow-ups likewise).

    A message costs a publish, its events and a task on some worker; a small batch's pooling, a
    carried batch's sink or a write to a local file are cheaper than that. Each is idempotent and
    watched by its state, so running it here changes what happens only in cost. One that fails on
    anything but the infrastructure is sent as a message after all, where its own retries and
    last resort apply.
    """
    pending = deque(items)
    budget = MAX_INLINE_STEPS
    while pending:
        item = pending.popleft()
        if item.inline and item.countdown_s <= 0 and budget > 0:
            budget -= 1
            more = _run_inline(item)
            if more is not None:
                # Depth first: a batch's deliveries and finish come before the next batch's sink.
                pending.extendleft(reversed(more))
                continue
        send(item)


def _run_inline(item: Followup) -> list[Followup] | None:
    """Run one step here; its follow-ups, or None when it failed (it is then sent)."""
    step = _INLINE_STEPS.get(item.task)
    if step is None:
        return None
    context = structlog.contextvars.get_contextvars()
    try:
        return step(get_runtime(), item.kwargs)
    except INFRA_ERRORS:
        raise
    except Exception as exc:
        _log.warning("inline_step_failed", task_name=item.task, error=type(exc).__name__, reason=str(exc)[:200])
        return None
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**context)


_INLINE_STEPS: dict[str, Callable[[Runtime, dict[str, Any]], list[Followup]]] = {
    "dropq.submit": lambda rt, kw: submit_batch(rt, kw["batch_id"], kw["seq"]),
    "dropq.sink": lambda rt, kw: sink_batch(rt, kw["batch_id"]),
    "dropq.deliver": lambda rt, kw: deliver_unit(rt, kw["job_id"], kw["unit_id"], kw["destination"], kw["attempt"]),
}


class StageTask(InfraRetryTask):  # type: ignore[misc]
    """A stage task: on an unexpected failure, its batch or delivery is closed with the error as reason."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Give up on what the task held, so that the job still finishes."""
        if isinstance(exc, INFRA_ERRORS):
            return
        send_all(give_up(get_runtime(), self.name, dict(kwargs or {}), exc, task_id))


# The options of every stage task: infrastructure retries, and giving up cleanly on anything else.
# No result: nobody waits on a stage task (the job ledger tracks progress, Flower reads events), and
# storing one costs two result-backend writes per task (STARTED, then SUCCESS), each carrying the
# task's arguments (result_extended), contacts included for produce: a quarter of a worker's CPU.
STAGE_TASK = {**INFRA_RETRY, "base": StageTask, "ignore_result": True}
