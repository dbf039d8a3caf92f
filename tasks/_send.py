"""Send a stage's follow-up messages through the app (routes pick each task's queue)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis
import structlog
from celery import Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from dropq.workers.app import app
from dropq.workers.pipeline.dispatch import dispatch
from dropq.workers.pipeline.followup import BrokerUnavailableError, Followup
from dropq.workers.pipeline.give_up import give_up
from dropq.workers.runtime import get_runtime

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


def send_all(items: Iterable[Followup]) -> None:
    """Send follow-ups in order."""
    for item in items:
        send(item)


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
