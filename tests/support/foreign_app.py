"""Another application: a Celery app that imports nothing of dropq and receives its callbacks.

Run as ``celery -A tests.support.foreign_app worker -Q crm``; it writes what it
receives under ``$CRM_OUT``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from celery import Celery

app = Celery("crm", broker=os.environ["CRM_BROKER_URL"], backend=os.environ.get("CRM_BACKEND_URL"))
app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json", task_acks_late=True)

_OUT = Path(os.environ.get("CRM_OUT", "."))


@app.task(name="crm.enriched")
def enriched(job_id: str, records: list[dict[str, Any]]) -> None:
    """Append each delivered record to records.jsonl."""
    with (_OUT / "records.jsonl").open("a") as out:
        for record in records:
            out.write(json.dumps({"job_id": job_id, **record}) + "\n")


@app.task(name="crm.job_done")
def job_done(job_id: str, summary: dict[str, Any]) -> None:
    """Write the job's summary once (append, so a second announcement would show)."""
    with (_OUT / "done.jsonl").open("a") as out:
        out.write(json.dumps({"job_id": job_id, "summary": summary}) + "\n")
