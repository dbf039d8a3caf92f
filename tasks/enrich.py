"""``dropq.enrich``: the public entry point other applications call by name."""

from __future__ import annotations

from typing import Any

from dropq.tasks._send import INFRA_RETRY, send_all
from dropq.workers.app import app
from dropq.workers.jobs.options import parse_job_options
from dropq.workers.pipeline.accept import accept_input
from dropq.workers.runtime import get_runtime

__all__ = ["enrich"]


@app.task(name="dropq.enrich", bind=True, **INFRA_RETRY)
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
) -> dict[str, Any]:
    """Accept contacts for a job; returns ``{"job_id", "received"}``. See the README's task API."""
    options = parse_job_options(siren=siren, language=language, destinations=destinations, callback=callback)
    job = job_id or self.request.id
    send_all(accept_input(get_runtime(), job, contacts, offset=offset, final=final, options=options))
    return {"job_id": job, "received": len(contacts)}
