"""Which queues a worker consumes: dropq's own, fixed at start, whatever it publishes to later.

A worker started without ``-Q`` consumes every queue the app knows. Celery adds a queue to
that set the first time the app publishes to it (``task_create_missing_queues``), and a
worker that reconnects to its broker consumes the set as it is then: after one broker
restart, a worker that had sent a callback to ``crm`` would consume ``crm`` and discard the
caller's messages as unregistered tasks. Selecting dropq's queues once the worker is set up
closes that door; an explicit ``-Q`` is left as given.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from dropq.config.celeryconfig import consumed_queues
from dropq.config.settings import Settings

__all__ = ["install"]


def install(settings: Settings, app: Celery) -> None:
    """Connect the handler that fixes the queues of a worker of ``app`` after its setup."""

    @signals.celeryd_after_setup.connect(weak=False)
    def _select_own_queues(sender: Any, instance: Any, **_: Any) -> None:
        if instance.app is not app:  # another application's worker that merely imports dropq
            return
        queues = instance.app.amqp.queues
        if queues._consume_from is None:  # no -Q: Celery would follow every queue added later
            queues.select(consumed_queues(settings))
