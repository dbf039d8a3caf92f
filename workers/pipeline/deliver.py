"""Deliver: write one unit of outcomes to one destination; each destination retries on its own."""

from __future__ import annotations

import structlog

from dropq.workers.destinations.base import DestinationError
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["deliver_unit"]

_log = structlog.get_logger(__name__)


def deliver_unit(rt: Runtime, job_id: str, unit_id: str, destination: str, attempt: int) -> list[Followup]:
    """Write the unit to the destination once; retry transient failures with backoff, then give up loudly.

    Returns:
        The retry of this delivery, or the finish check.
    """
    if rt.outcomes.is_delivered(job_id, unit_id, destination):
        return finish_if_complete(rt, job_id)
    outcomes = rt.outcomes.load(unit_id)
    if outcomes is None:
        return finish_if_complete(rt, job_id)
    options = rt.ledger.options(job_id)
    try:
        rt.destinations.get(destination, options).deliver(job_id, unit_id, outcomes)
    except DestinationError as exc:
        errors = attempt + 1
        if exc.is_transient and not rt.retry_schedule.is_exhausted(errors):
            _log.warning("delivery_retry", job_id=job_id, destination=destination, errors=errors, reason=exc.reason)
            delay = rt.retry_schedule.delay_s(errors, rt.rng)
            return [followup.deliver(job_id, unit_id, destination, attempt=errors, countdown_s=delay)]
        _log.error("delivery_failed", job_id=job_id, destination=destination, records=len(outcomes), reason=exc.reason)
        rt.outcomes.mark_delivered(job_id, unit_id, destination, gave_up=True)
        return finish_if_complete(rt, job_id)
    rt.outcomes.mark_delivered(job_id, unit_id, destination)
    return finish_if_complete(rt, job_id)
