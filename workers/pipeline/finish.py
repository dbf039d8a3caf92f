"""Finish: once nothing is left, assemble the destinations' files and announce the job, once."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from dropq.config.celeryconfig import finisher_silence_ms
from dropq.workers.destinations.base import DestinationError
from dropq.workers.jobs.watchdog import finish_member
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime

__all__ = ["finish_if_complete", "finish_job"]

_log = structlog.get_logger(__name__)


def finish_if_complete(rt: Runtime, job_id: str) -> list[Followup]:
    """A ``dropq.finish`` message when the job looks complete or its finisher went silent, else nothing."""
    if rt.ledger.needs_finisher(job_id, rt.now_ms(), finisher_silence_ms(rt.settings)):
        return [followup.finish(job_id)]
    return []


def finish_job(rt: Runtime, job_id: str, finisher: str, send: Callable[[Followup], None]) -> bool:
    """Finish the job if this caller wins the claim: destinations' ``finish``, ``callback.on_done``, then the mark.

    The job is marked finished only after the announcement is sent, so a crash
    in between sends it again on redelivery rather than never.

    Args:
        rt: the runtime.
        job_id: the job.
        finisher: the calling task's id (a redelivered message keeps it, and carries on).
        send: sends a message (the ``on_done`` callback).

    Returns:
        True when this call finished the job.
    """
    if not rt.ledger.begin_finish(job_id, finisher, rt.now_ms(), finisher_silence_ms(rt.settings)):
        return False
    options = rt.ledger.options(job_id)
    for name in rt.destinations.names_for(options):
        try:
            rt.destinations.get(name, options).finish(job_id)
        except DestinationError as exc:
            _log.error("destination_finish_failed", job_id=job_id, destination=name, reason=exc.reason)
        except Exception as exc:
            _log.exception("destination_finish_failed", job_id=job_id, destination=name, error=type(exc).__name__)
        # A long merge must not look like a dead finisher; a finisher replaced meanwhile stops here.
        if not rt.ledger.heartbeat_finish(job_id, finisher, rt.now_ms()):
            _log.warning("finisher_replaced", job_id=job_id)
            return False
    status = rt.ledger.read(job_id)
    # The time the job is marked finished with, in the announcement too (not the ledger's 0 of a job not yet marked).
    finished_ms = rt.now_ms()
    summary = {**(status.summary() if status else {"job_id": job_id}), "state": "finished", "finished_ms": finished_ms}
    # Still the finisher right before the announcement: a finisher replaced while it stalled says nothing.
    if not rt.ledger.heartbeat_finish(job_id, finisher, rt.now_ms()):
        return False
    if options.callback and options.callback.on_done:
        send(Followup(options.callback.on_done, {"job_id": job_id, "summary": summary}, queue=options.callback.queue))
    if not rt.ledger.end_finish(job_id, finisher, finished_ms):
        return False
    rt.watchdog.disarm(finish_member(job_id))
    counts = {k: v for k, v in summary.items() if k not in ("state", "fatal_reason", "finished_ms")}
    if counts.get("failed") or counts.get("deliveries_failed"):
        # Failed records or deliveries: a warning with the counts and the first reason records failed for.
        _log.warning("job_finished", finished_ms=finished_ms, first_reason=rt.ledger.first_failure(job_id), **counts)
    else:
        _log.info("job_finished", finished_ms=finished_ms, **counts)
    return True
