"""Helpers for end-to-end tests: the environment of a worker on the sandbox, and waiting for a job."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import redis

from dropq.workers import keys
from dropq.workers.jobs.ledger import JobLedger, JobStatus
from tests.support.processes import client_app

# Small delays so a job of a few thousand records takes seconds, not minutes.
FAST_POLLING = {
    "DROPQ_POLL_FIRST_S": "0.3",
    "DROPQ_POLL_BASE_S": "0.3",
    "DROPQ_POLL_CAP_S": "1",
    "DROPQ_POLL_MAX_AGE_S": "60",
}


def worker_env(redis_url: str, sandbox: Any, out_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker that talks to the sandbox and writes files under ``out_dir``."""
    config = out_dir / "destinations.toml"
    config.write_text(
        'default = ["jsonl"]\n\n'
        f'[destinations.jsonl]\ntype = "jsonl"\ndirectory = "{out_dir}"\n\n'
        f'[destinations.csv]\ntype = "csv"\ndirectory = "{out_dir}"\n'
    )
    return {
        "REDIS_URL": redis_url,
        "DROPCONTACT_API_URL": sandbox.url,
        "DROPCONTACT_API_KEY": sandbox.api_key,
        "DROPQ_DESTINATIONS": str(config),
        "DROPQ_RATE_LIMIT": "50",
        **FAST_POLLING,
        **extra,
    }


def wait_for_job(redis_url: str, job_id: str, timeout_s: float = 90.0) -> JobStatus:
    """Wait until the job is finished; fail with its ledger when it does not finish in time."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ledger = JobLedger(client, ttl_s=3600)
    deadline = time.monotonic() + timeout_s
    status = None
    try:
        while time.monotonic() < deadline:
            status = ledger.read(job_id)
            if status is not None and status.is_finished:
                return status
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError(f"job {job_id} did not finish within {timeout_s}s: {status}")


def send_calls(redis_url: str, job_prefix: str, contacts: list[dict[str, Any]], per_call: int = 2,
               **kwargs: Any) -> list[str]:  # fmt: skip
    """Send the contacts as many ``dropq.enrich`` calls at once (a CRM's hooks), each its own job
    ``{job_prefix}-{n}`` of ``per_call`` contacts; wait until each was taken; return the job ids."""
    app = client_app(redis_url)
    job_ids = [f"{job_prefix}-{n}" for n in range(len(contacts) // per_call)]
    try:
        sent = [
            app.send_task(
                "dropq.enrich",
                kwargs={"contacts": contacts[n * per_call : (n + 1) * per_call], "job_id": job_id, **kwargs},
                queue="dropq.produce",
            )
            for n, job_id in enumerate(job_ids)
        ]
        for result in sent:
            result.get(timeout=60)
    finally:
        app.close()
    return job_ids


def read_stream(redis_url: str, job_id: str) -> list[dict[str, Any]]:
    """Every outcome the job's stream holds."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = client.xrange(keys.job_outcomes_key(job_id))
        return [json.loads(fields["o"]) for _, fields in entries]
    finally:
        client.close()


def add_destination(env: dict[str, str], name: str, kind: str, **options: object) -> None:
    """Append ``[destinations.{name}]`` to the destination file of a ``worker_env`` environment."""
    config = Path(env["DROPQ_DESTINATIONS"])
    lines = [f"\n[destinations.{name}]", f"type = {json.dumps(kind)}"]
    for key, value in options.items():
        if isinstance(value, dict):
            pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {pairs} }}")
        else:
            # JSON strings and numbers are valid TOML values.
            lines.append(f"{key} = {json.dumps(value)}")
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
