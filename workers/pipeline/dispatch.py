"""Send a follow-up the one way: arm its watchdog deadline first, then hand it to the broker.

Armed first, so that a message the broker never took (it was away) or a
worker lost (it died holding it) is found overdue by the sweep; armed with
the renewal of the keys its work lives in, so that a batch waiting days for
credits keeps its records as long as its messages keep coming.
"""

from __future__ import annotations

from celery import Celery

from dropq.config.celeryconfig import max_countdown_s
from dropq.workers import keys
from dropq.workers.jobs.batch import is_shared
from dropq.workers.jobs.outcomes import job_of_unit
from dropq.workers.jobs.watchdog import batch_member, delivery_member, finish_member, parked_member
from dropq.workers.pipeline.followup import Followup, send_followup
from dropq.workers.runtime import Runtime

__all__ = ["dispatch", "watch_of"]

_BATCH_TASKS = ("dropq.submit", "dropq.poll", "dropq.sink")


def watch_of(rt: Runtime, item: Followup) -> tuple[str, list[str]] | None:
    """The watchdog member of a message and the keys its work lives in; None for messages to other apps."""
    kwargs = item.kwargs
    if item.task in _BATCH_TASKS:
        batch_id = str(kwargs["batch_id"])
        if is_shared(batch_id):
            # No job of its own: the batches it carries live as long as it does (days waiting for credits).
            members = str(rt.redis.hget(keys.batch_key(batch_id), "members") or "")
            carried = [key for member in members.split(",") if member for key in rt.batches.keys_of(member)[:2]]
            return batch_member(batch_id), [*rt.batches.keys_of(batch_id), *carried]
        return batch_member(batch_id), [*rt.batches.keys_of(batch_id), keys.job_key(job_of_unit(batch_id))]
    if item.task == "dropq.deliver":
        unit_id = str(kwargs["unit_id"])
        return delivery_member(unit_id, str(kwargs["destination"])), [
            keys.unit_key(unit_id),
            keys.job_key(job_of_unit(unit_id)),
        ]
    if item.task == "dropq.finish":
        return finish_member(str(kwargs["job_id"])), [keys.job_key(str(kwargs["job_id"]))]
    if item.task == "dropq.produce":
        job_id = str(kwargs["job_id"])
        return parked_member(job_id, int(kwargs["offset"])), [keys.job_parked_parts_key(job_id), keys.job_key(job_id)]
    return None


def dispatch(rt: Runtime, app: Celery, item: Followup) -> None:
    """Arm the message's deadline (for dropq's own messages), then send it.

    Raises:
        BrokerUnavailableError: the message could not be sent (its deadline stands: the sweep sends it later).
    """
    cap_s = max_countdown_s(rt.settings)
    watch = watch_of(rt, item)
    if watch is not None:
        member, renew = watch
        delay_s = min(max(0.0, item.countdown_s), cap_s)
        rt.watchdog.arm(member, rt.now_ms(), delay_s, renew)
    send_followup(app, item, cap_s)
