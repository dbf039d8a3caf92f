"""Send a stage's follow-up messages through the app (routes pick each task's queue)."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from kombu.exceptions import OperationalError

from config.celeryconfig import max_countdown_s
from workers.app import app, settings
from workers.pipeline.followup import Followup, send_followup

__all__ = ["send", "send_all", "INFRA_ERRORS", "INFRA_RETRY"]

# A countdown longer than the visibility timeout would be redelivered while it waits.
_MAX_COUNTDOWN_S = max_countdown_s(settings)

# Redis or the broker restarting is waiting, not failing: such tasks retry without a limit.
INFRA_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError)
INFRA_RETRY = {
    "autoretry_for": INFRA_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": None,
}


def send(item: Followup) -> None:
    """Send one follow-up."""
    send_followup(app, item, _MAX_COUNTDOWN_S)


def send_all(items: Iterable[Followup]) -> None:
    """Send follow-ups in order."""
    for item in items:
        send(item)
