"""Accept: the public entry. Check the call, open (or join) the job, register the input part, produce it."""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog

from dropq.config.celeryconfig import consumed_queues
from dropq.dropcontact.records import MAX_BATCH_RECORDS
from dropq.workers.destinations.base import DestinationError
from dropq.workers.jobs.ledger import JobFinishedError, PartVerdict
from dropq.workers.jobs.options import MAX_INPUT_INDEX, JobOptions, JobOptionsError, is_valid_job_id
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.produce import produce_part
from dropq.workers.runtime import Runtime

__all__ = ["accept_input"]

_log = structlog.get_logger(__name__)


def accept_input(
    rt: Runtime, job_id: str, contacts: Any, *, offset: int, final: bool, options: JobOptions
) -> list[Followup]:
    """Open the job (the same id twice is one job) and produce the part.

    Raises:
        JobOptionsError: the call is malformed (nothing is stored then).
    """
    if not isinstance(job_id, str) or not is_valid_job_id(job_id):
        raise JobOptionsError("job_id", job_id, "1 to 128 letters, digits, '.', '_', ':' or '-'")
    if not isinstance(contacts, list):
        raise JobOptionsError("contacts", type(contacts).__name__, "a list of contact objects")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise JobOptionsError("offset", offset, "a non-negative integer (the index of the part's first contact)")
    if offset + len(contacts) > MAX_INPUT_INDEX:
        raise JobOptionsError(
            "offset", offset, f"at most {MAX_INPUT_INDEX:,} with its contacts (a job holds at most that many)"
        )
    if not isinstance(final, bool):
        raise JobOptionsError("final", final, "true or false")
    callback_queue = options.callback.queue if options.callback else None
    if callback_queue in consumed_queues(rt.settings):
        # Celery's default queue, when this broker is dropq's alone: dropq's workers would take the callbacks.
        raise JobOptionsError("callback.queue", callback_queue, "a queue that dropq's workers do not consume")
    try:
        rt.destinations.names_for(options)
    except DestinationError as exc:
        raise JobOptionsError("destinations", list(options.destinations or ()), f"known names ({exc.reason})") from exc
    if options.priority == "auto":
        # Decided once, by the call that opens the job: its whole input in one batch's worth is a CRM's contact.
        alone = offset == 0 and final and len(contacts) <= MAX_BATCH_RECORDS
        options = dataclasses.replace(options, priority="interactive" if alone else "bulk")
    created = rt.ledger.open(job_id, options, rt.now_ms())
    part_id = str(offset)
    verdict = rt.ledger.register_part(job_id, part_id, final=final, end=offset + len(contacts))
    if verdict is PartVerdict.REFUSED:
        raise JobFinishedError.for_job(job_id)
    _log.info("input_accepted", job_id=job_id, part_id=part_id, records=len(contacts), new_job=created,
              part=verdict.name.lower(), final=final)  # fmt: skip
    if verdict is PartVerdict.PRODUCED:
        # A resend (or a redelivery) of a part already produced: the same part twice is one part.
        return []
    # Produced here rather than by a dropq.produce message: the contacts cross the broker once.
    # (A part that must wait for earlier parts goes on as a dropq.produce message.)
    return produce_part(rt, job_id, part_id, offset, contacts)
