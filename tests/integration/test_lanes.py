"""Lanes: a CRM's lone contact sent while a backfill waits for tokens is served first, not behind the backfill."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from dropq.workers.jobs.ledger import JobLedger
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app

# 5 requests a second: the backfill's 40 POSTs alone keep the limiter busy for 8 s.
RATE = "5"
SCHEDULE = {"DROPQ_POLL_FIRST_S": "5", "DROPQ_POLL_BASE_S": "5", "DROPQ_POLL_CAP_S": "5"}


def test_a_lone_contact_beside_a_backfill_comes_back_before_the_backfill_is_even_sent(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """The lone job (auto: interactive) takes the limiter's first lane for its POST and its looks."""
    sandbox.configure(processing_min_s=1.0, processing_max_s=1.0)
    # 8 threads, far fewer than the backfill's 40 waiting submits: each waits in the limiter's line for the time
    # it is told (a countdown, not a thread), so the lone contact's call finds a free thread at once.
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_RATE_LIMIT=RATE, **SCHEDULE)
    start_worker(env, concurrency=8)
    app = client_app(redis_url, redis_url)
    ledger = JobLedger(redis.Redis.from_url(redis_url, decode_responses=True), 3600)
    # Given: a backfill of 40 batches (auto: bulk), its POSTs waiting for tokens
    app.send_task(
        "dropq.enrich", kwargs={"contacts": make_contacts(10_000, seed=7), "job_id": "backfill"},
        queue="dropq.produce",
    ).get(timeout=60)  # fmt: skip
    deadline = time.monotonic() + 30
    while (status := ledger.read("backfill")) is None or status.batches_submitted < 5:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)

    # When: a lone contact comes
    sent = time.time()
    app.send_task(
        "dropq.enrich", kwargs={"contacts": make_contacts(1, seed=8), "job_id": "lone"}, queue="dropq.produce"
    ).get(timeout=30)
    lone = wait_for_job(redis_url, "lone", timeout_s=60)

    # Then: it is back within its API time (1 s), its wait to share a request (1 s, the default linger) and
    # a few slots, while the backfill is still being sent
    took_s = lone.finished_ms / 1000 - sent
    backfill = ledger.read("backfill")
    assert took_s < 6.0, took_s
    assert backfill is not None and backfill.batches_submitted < backfill.batches, backfill
    assert lone.delivered == 1
    assert wait_for_job(redis_url, "backfill", timeout_s=120).accounted == 10_000
