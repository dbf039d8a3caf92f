"""``dropq.enrich``: the public entry point other applications call by name."""

from __future__ import annotations

from typing import Any

import structlog

from dropq.config.celeryconfig import stage_queues
from dropq.tasks._send import INFRA_ERRORS, INFRA_RETRY, InfraRetryTask, send_all
from dropq.workers.app import app
from dropq.workers.jobs.capacity import DeploymentBusyError
from dropq.workers.jobs.options import JobOptionsError, parse_job_options
from dropq.workers.pipeline.accept import accept_input
from dropq.workers.pipeline.give_up import give_up_part
from dropq.workers.redaction import ContactSafeRequest
from dropq.workers.runtime import get_runtime

_log = structlog.get_logger(__name__)


class EnrichTask(InfraRetryTask):  # type: ignore[misc]  # Celery ships no type hints
    """``dropq.enrich``: a part that failed on a bug after it was registered has its records failed, not lost."""

    # Events, logs and inspect replies describe the call (a count of contacts), whatever the caller sent.
    Request = ContactSafeRequest

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """Fail the records the part could not commit, so that its job still finishes."""
        if isinstance(exc, (JobOptionsError, DeploymentBusyError, *INFRA_ERRORS)):
            return  # refused before anything was stored, or waiting for Redis/the broker
        call = dict(kwargs or {})
        contacts = call.get("contacts", args[0] if args else None)
        offset = call.get("offset", 0)
        job_id = call.get("job_id") or task_id
        if isinstance(contacts, list) and isinstance(offset, int) and isinstance(job_id, str):
            send_all(give_up_part(get_runtime(), job_id, offset, contacts, exc))


__all__ = ["enrich", "WHEN_BUSY"]

# What a part does when the deployment holds DROPQ_MAX_WAITING_CONTACTS (workers.jobs.capacity).
WHEN_BUSY = ("wait", "refuse")


# throws: a refused call is expected; Celery logs it at INFO without a traceback.
_REFUSALS = (JobOptionsError, DeploymentBusyError)


@app.task(name="dropq.enrich", bind=True, throws=_REFUSALS, **{**INFRA_RETRY, "base": EnrichTask})
def enrich(
    self: Any,
    contacts: list[Any],
    job_id: str | None = None,
    offset: int = 0,
    final: bool = True,
    siren: bool = False,
    language: str | None = None,
    destinations: list[str] | None = None,
    callback: dict[str, Any] | None = None,
    when_busy: str = "wait",
    cache: str = "use",
    priority: str = "auto",
) -> dict[str, Any]:
    """Accept contacts for a job; returns ``{"job_id", "received"}``. See the README's task API."""
    # Only a missing job_id becomes the task id: "", 0 or {} are refused as what they are.
    job = self.request.id if job_id is None else job_id
    try:
        rt = get_runtime()
        options = parse_job_options(
            siren=siren,
            language=language,
            destinations=destinations,
            callback=callback,
            cache=cache,
            priority=priority,
            own_queues=stage_queues(rt.settings),
        )
        if when_busy not in WHEN_BUSY:
            raise JobOptionsError("when_busy", when_busy, "'wait' or 'refuse'")
        wait_s = rt.capacity.admit(len(contacts)) if isinstance(contacts, list) else None
        if wait_s is not None:
            # Nothing is stored: the part comes back (held as this very message) or goes back to its caller.
            if when_busy == "refuse":
                _log.info("part_refused_busy", job_id=job, offset=offset, records=len(contacts), retry_in_s=wait_s)
                raise rt.capacity.busy_error(wait_s)
            _log.info("part_held", job_id=job, offset=offset, records=len(contacts), retry_in_s=wait_s)
            raise self.retry(countdown=wait_s, max_retries=None)
        send_all(accept_input(rt, job, contacts, offset=offset, final=final, options=options))
    except JobOptionsError as exc:
        # The caller's mistake, not ours: one warning line with the reason (no traceback), and the error to them.
        _log.warning("call_refused", argument=exc.name, reason=str(exc))
        raise
    return {"job_id": job, "received": len(contacts) if isinstance(contacts, list) else 0}
