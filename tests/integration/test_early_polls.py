"""A lone contact comes back about when the API has it, not at the fixed schedule's first poll (40 s)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from dropq.dropcontact.backoff import DEFAULT_POLL_BASE_S, DEFAULT_POLL_CAP_S, DEFAULT_POLL_FIRST_S
from dropq.workers import keys
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app

# The fixed schedule at its defaults: only the early polls can bring a result before 40 s.
DEFAULT_SCHEDULE = {
    "DROPQ_POLL_FIRST_S": str(DEFAULT_POLL_FIRST_S),
    "DROPQ_POLL_BASE_S": str(DEFAULT_POLL_BASE_S),
    "DROPQ_POLL_CAP_S": str(DEFAULT_POLL_CAP_S),
}
API_DELAY_S = 2.0


def _send_one(redis_url: str, job_id: str) -> float:
    app = client_app(redis_url)
    try:
        started = time.monotonic()
        app.send_task("dropq.enrich", kwargs={"contacts": make_contacts(1), "job_id": job_id}).get(timeout=30)
        return started
    finally:
        app.close()


def test_a_lone_contact_is_delivered_within_the_api_time_plus_four_seconds(
    start_worker: Any, redis_url: str, redis_client: redis.Redis, sandbox: Any, tmp_path: Path
) -> None:
    """API 2 s, schedule at its defaults: each of three lone-contact jobs is done in under 6 s; the times are learnt."""
    sandbox.configure(processing_min_s=API_DELAY_S, processing_max_s=API_DELAY_S)
    start_worker(worker_env(redis_url, sandbox, tmp_path, **DEFAULT_SCHEDULE))
    for n in range(3):
        started = _send_one(redis_url, f"lone-{n}")
        status = wait_for_job(redis_url, f"lone-{n}", timeout_s=30)
        took_s = time.monotonic() - started
        assert status.delivered == 1
        assert took_s < API_DELAY_S + 4, f"job {n} took {took_s:.1f} s"
    learnt = redis_client.lrange(keys.processing_times_key(keys.account_id(sandbox.api_key), "s"), 0, -1)
    # Each estimate lies between a batch's last unready look and its ready one: around the 2 s.
    assert len(learnt) == 3 and all(1000 <= int(ms) <= (API_DELAY_S + 2) * 1000 for ms in learnt), learnt


def test_without_early_polls_the_fixed_schedule_decides(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """DROPQ_POLL_EARLY=false: the same job waits for the first scheduled poll (here 12 s)."""
    sandbox.configure(processing_min_s=API_DELAY_S, processing_max_s=API_DELAY_S)
    env = worker_env(redis_url, sandbox, tmp_path, **DEFAULT_SCHEDULE, DROPQ_POLL_EARLY="false")
    start_worker({**env, "DROPQ_POLL_FIRST_S": "12"})
    started = _send_one(redis_url, "fixed-1")
    wait_for_job(redis_url, "fixed-1", timeout_s=30)
    assert time.monotonic() - started >= 12 * 0.8, "the first poll is jittered by 20% at most"
