"""Flow control from a caller's side: past DROPQ_MAX_WAITING_CONTACTS, a part waits (or is refused) unstored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dropq.workers.jobs.ledger import JobLedger
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import client_app

CAP = 300


@pytest.fixture
def busy_deployment(start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path) -> Any:
    """A worker whose cap is 300 contacts, on a sandbox that takes 3 s over each batch."""
    sandbox.configure(processing_min_s=3.0, processing_max_s=3.0)
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_MAX_WAITING_CONTACTS=str(CAP), DROPQ_POLL_EARLY="false")
    start_worker(env, concurrency=4)
    return client_app(redis_url, redis_url)


def _call(app: Any, job_id: str, contacts: list[dict[str, Any]], **kwargs: Any) -> Any:
    payload = {"contacts": contacts, "job_id": job_id, **kwargs}
    return app.send_task("dropq.enrich", kwargs=payload, queue="dropq.produce")


def test_a_part_over_the_cap_is_refused_unstored_with_when_to_try_again(busy_deployment: Any, redis_url: str) -> None:
    """when_busy="refuse": the caller gets a retryable error with a wait; the refused part left no trace."""
    # Given: a first job holds 250 contacts (its batch takes 3 s at the API)
    app = busy_deployment
    _call(app, "first", make_contacts(250, seed=1)).get(timeout=30)

    # When: a second job sends 100 more (250 + 100 > 300), asking to be refused
    with pytest.raises(Exception) as refused:
        _call(app, "second", make_contacts(100, seed=2), when_busy="refuse").get(timeout=30)

    # Then: the error names the cap and the wait; nothing of the second job was stored
    assert type(refused.value).__name__ == "DeploymentBusyError"
    message = str(refused.value)
    assert "DROPQ_MAX_WAITING_CONTACTS" in message and "send the same call again in" in message
    assert "nothing of this part was stored" in message
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert JobLedger(client, 3600).read("second") is None
    # And the same call sent again once the first job is done goes through, every record accounted for
    wait_for_job(redis_url, "first", timeout_s=60)
    _call(app, "second", make_contacts(100, seed=2), when_busy="refuse").get(timeout=30)
    second = wait_for_job(redis_url, "second", timeout_s=60)
    assert second.received == 100 and second.accounted == 100


def test_a_held_part_goes_in_once_the_work_ahead_drains_and_nothing_is_lost(
    busy_deployment: Any, redis_url: str
) -> None:
    """when_busy="wait" (the default): the call's result comes when the part is admitted; counts in = counts out."""
    # Given: the deployment holds 250 contacts of a first job
    app = busy_deployment
    _call(app, "first", make_contacts(250, seed=3)).get(timeout=30)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ledger = JobLedger(client, 3600)

    # When: another job sends two parts of 200 without waiting (a fire-and-forget caller)
    started = time.monotonic()
    contacts = make_contacts(400, seed=4)
    calls = [
        _call(app, "held", contacts[:200], offset=0, final=False),
        _call(app, "held", contacts[200:], offset=200, final=True),
    ]

    # Then: while the first job's batch is at the API, the held job has received nothing
    time.sleep(1.0)
    held = ledger.read("held")
    assert held is None or held.received == 0, held
    # And each call returns once admitted, after the first job drained; every record comes back
    for call in calls:
        call.get(timeout=90)
    assert time.monotonic() - started > 2.0
    status = wait_for_job(redis_url, "held", timeout_s=90)
    assert status.received == 400 and status.accounted == 400
    assert wait_for_job(redis_url, "first", timeout_s=5).accounted == 250
    # And the waiting count is back to nothing
    assert ledger.waiting_contacts() == 0


def test_a_part_larger_than_the_cap_goes_in_alone(busy_deployment: Any, redis_url: str) -> None:
    """Nothing waiting: a part bigger than the cap is admitted (a cap never blocks a job for ever)."""
    app = busy_deployment
    _call(app, "big", make_contacts(CAP + 200, seed=5), when_busy="refuse").get(timeout=30)
    status = wait_for_job(redis_url, "big", timeout_s=60)
    assert status.received == CAP + 200 and status.accounted == CAP + 200


def test_when_busy_must_be_wait_or_refuse(busy_deployment: Any) -> None:
    """A wrong value is refused as the caller's mistake, naming the argument."""
    with pytest.raises(Exception) as refused:
        _call(busy_deployment, "typo", make_contacts(3, seed=6), when_busy="later").get(timeout=30)
    assert type(refused.value).__name__ == "JobOptionsError"
    assert "when_busy must be 'wait' or 'refuse', got 'later'" in str(refused.value)
