"""One lifecycle for a job's state: resends after the finish, TTLs renewed together, finishers replaced, ids apart.

Each test replays a path found from the outside that lost or double-charged
records (see the lifecycle rule in ``dropq.workers.keys``): with a real
worker, a private Redis and the sandbox over HTTP.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.jobs.batch import SegmentCommit
from dropq.workers.jobs.ledger import FINISHED_BULK_TTL_S, JobLedger, JobStatus
from dropq.workers.jobs.options import MAX_INPUT_INDEX, JobOptions
from dropq.workers.pipeline.give_up import give_up_part
from dropq.workers.runtime import build_runtime
from tests.support.contacts import make_contacts
from tests.support.pipeline import read_stream, wait_for_job, worker_env
from tests.support.processes import client_app

# Keys that have no TTL by design: global indexes whose members leave with their job or work.
# The metrics' counters and heartbeats too: bounded fields and members (workers.keys says why).
GLOBAL_KEYS = {keys.jobs_index_key(), keys.watchdog_key(), keys.stats_key(), keys.workers_key()}


def _send(redis_url: str, **kwargs: Any) -> Any:
    app = client_app(redis_url)
    try:
        return app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()


def _file_indexes(out: Path, job_id: str) -> list[int]:
    return [json.loads(line)["index"] for line in (out / f"{job_id}.jsonl").read_text().splitlines()]


def _assert_accounted(status: JobStatus, received: int) -> None:
    assert status.received == received
    assert status.accounted == received, f"every record has one outcome: {status}"
    assert status.delivered == status.enriched + status.not_found


def _keys_without_ttl(client: redis.Redis) -> list[str]:
    return sorted(
        str(k)
        for k in client.scan_iter("dropq:*")
        if client.ttl(k) == -1 and str(k) not in GLOBAL_KEYS and not str(k).startswith(keys.api_calls_key(""))
    )


def test_a_resend_after_the_finish_and_after_the_bookkeeping_expired_posts_nothing(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 1: the same job sent again once its de-duplication sets are gone is still one job, paid once."""
    # Given: a finished job whose short-lived bookkeeping has expired (as it does an hour after the finish)
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    contacts = make_contacts(5)
    _send(redis_url, contacts=contacts, job_id="resend-1")
    wait_for_job(redis_url, "resend-1")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    expired = [k for k in client.scan_iter("dropq:*resend-1*") if 0 < client.ttl(k) <= FINISHED_BULK_TTL_S]
    assert expired, "the bookkeeping of a finished job is short-lived"
    assert not list(client.scan_iter("dropq:job-seen*resend-1*")), "the digests go with the finish"
    client.delete(*expired)
    # When: a caller retries after a timeout, or the broker redelivers the message
    answer = _send(redis_url, contacts=contacts, job_id="resend-1")
    time.sleep(2)
    # Then
    assert answer["job_id"] == "resend-1"
    assert sandbox.stats()["batches_received"] == 1, "the resend POSTed nothing"
    status = JobLedger(client, 600).read("resend-1")
    assert status is not None and status.is_finished and status.resubmitted == 0
    _assert_accounted(status, 5)
    assert _file_indexes(tmp_path, "resend-1") == list(range(5))
    client.close()


def test_new_contacts_for_a_finished_job_are_refused_and_its_file_stays_whole(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 4: a new part for a finished job is refused with a clear error; the file keeps records 0 to 4."""
    # Given
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    _send(redis_url, contacts=make_contacts(5), job_id="closed-1")
    wait_for_job(redis_url, "closed-1")
    # When
    with pytest.raises(Exception) as refused:
        _send(redis_url, contacts=make_contacts(10)[5:], job_id="closed-1", offset=5, final=True)
    time.sleep(1)
    # Then
    assert type(refused.value).__name__ == "JobFinishedError"
    assert "new job_id" in str(refused.value) and "closed-1" in str(refused.value)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    status = JobLedger(client, 600).read("closed-1")
    assert status is not None
    _assert_accounted(status, 5)
    assert _file_indexes(tmp_path, "closed-1") == list(range(5))
    assert sandbox.stats()["batches_received"] == 1
    client.close()


def test_a_batch_retried_past_the_job_ttl_keeps_its_records(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 2: 503s for longer than the TTL: the records live as long as the batch, and every record comes back."""
    # Given: keys that live 3 s, and an API that fails every POST for 8 s
    sandbox.configure(error_probability=1.0, error_statuses=(503,))
    env = worker_env(
        redis_url, sandbox, tmp_path, DROPQ_JOB_TTL_S="3", DROPQ_MAX_RETRIES="30", DROPQ_STALL_TIMEOUT_S="2"
    )
    start_worker(env)
    _send(redis_url, contacts=make_contacts(5), job_id="ttl-1")
    time.sleep(8)
    # When
    sandbox.configure(error_probability=0.0)
    status = wait_for_job(redis_url, "ttl-1", timeout_s=60)
    # Then
    _assert_accounted(status, 5)
    assert status.delivered == 5 and status.failed == 0
    assert _file_indexes(tmp_path, "ttl-1") == list(range(5))


def test_a_job_paused_past_its_ttl_keeps_its_own_keys_and_its_tombstone(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Credits gone past the TTL: the sweep renews the job's sets, so a resend after the finish is a no-op."""
    # Given: keys that live 4 s, and no credits for 10 s
    sandbox.configure(credits=0)
    env = worker_env(
        redis_url, sandbox, tmp_path, DROPQ_JOB_TTL_S="4", DROPQ_STALL_TIMEOUT_S="2", DROPQ_CREDIT_RECHECK_S="1"
    )
    start_worker(env)
    contacts = make_contacts(5)
    _send(redis_url, contacts=contacts, job_id="paused-1")
    time.sleep(10)
    sandbox.configure(credits=1000)
    status = wait_for_job(redis_url, "paused-1", timeout_s=60)
    # When: the same call again, after the finish
    _send(redis_url, contacts=contacts, job_id="paused-1")
    time.sleep(1)
    # Then
    _assert_accounted(status, 5)
    assert status.delivered == 5
    assert sandbox.stats()["batches_received"] == 1


def test_a_job_left_finishing_by_a_dead_finisher_is_finished_by_the_sweep(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 3: a finisher that died (or failed) leaves ``finishing``; the sweep sends a new one, which takes over."""
    # Given: a complete job, left in finishing by a finisher silent for 10 minutes
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_STALL_TIMEOUT_S="2")
    start_worker(env)
    _send(redis_url, contacts=make_contacts(3), job_id="finisher-1")
    wait_for_job(redis_url, "finisher-1")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    now_ms = int(time.time() * 1000)
    client.hset(
        keys.job_key("finisher-1"), mapping={"state": "finishing", "finisher": "dead", "finishing_ms": now_ms - 600_000}
    )
    client.zadd(keys.jobs_index_key(), {"finisher-1": now_ms})
    # When: the sweep runs (every 0.5 s with a 2 s stall timeout)
    status = wait_for_job(redis_url, "finisher-1", timeout_s=20)
    # Then
    _assert_accounted(status, 3)
    assert _file_indexes(tmp_path, "finisher-1") == [0, 1, 2]
    client.close()


def test_keys_of_an_expired_job_are_never_recreated_without_a_ttl(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 5: stale messages for a job whose keys expired create nothing; a fragment of a batch breaks no sweep."""
    # Given: a finished job whose keys have all expired, and a batch hash fragment without its job
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_STALL_TIMEOUT_S="2")
    start_worker(env)
    _send(redis_url, contacts=make_contacts(3), job_id="gone-1")
    wait_for_job(redis_url, "gone-1")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.delete(*[k for k in client.scan_iter("dropq:*gone-1*")])
    # A unit outliving its ledger (their TTLs are set by different writes): its delivery would count on a ledger
    outcome = {"job_id": "gone-1", "index": 0, "status": "failed", "reason": "x", "record": None, "input": {}}
    client.hset(keys.unit_key("gone-1/0/0"), mapping={"payload": json.dumps([outcome]), "remaining": 1})
    client.expire(keys.unit_key("gone-1/0/0"), 600)
    client.hset(keys.batch_key("fragment/0/0"), "touched_ms", 5)
    client.expire(keys.batch_key("fragment/0/0"), 600)
    client.zadd(keys.watchdog_key(), {"b|fragment/0/0": 1})
    # When: redelivered messages of the expired job arrive, and another job runs meanwhile
    app = client_app(redis_url)
    try:
        for name, kwargs in (
            ("dropq.submit", {"batch_id": "gone-1/0/0", "seq": 0}),
            ("dropq.poll", {"batch_id": "gone-1/0/0", "seq": 1}),
            ("dropq.sink", {"batch_id": "gone-1/0/0"}),
            ("dropq.deliver", {"job_id": "gone-1", "unit_id": "gone-1/0/0", "destination": "jsonl", "attempt": 0}),
            ("dropq.finish", {"job_id": "gone-1"}),
        ):
            app.send_task(
                name,
                kwargs=kwargs,
                queue="dropq.sink" if name in ("dropq.deliver", "dropq.finish", "dropq.sink") else name,
            )
    finally:
        app.close()
    _send(redis_url, contacts=make_contacts(3), job_id="alive-1")
    status = wait_for_job(redis_url, "alive-1")
    time.sleep(3)
    # Then
    _assert_accounted(status, 3)
    assert _keys_without_ttl(client) == []
    assert not client.exists(keys.job_key("gone-1"))
    client.close()


def test_job_ids_sharing_a_prefix_keep_their_outcomes_apart(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 6: jobs ``x`` and ``x:x`` (unit ids once collided) each get their own rows, once."""
    # Given
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    bad = {"first_name": "", "last_name": ""}
    # When: both with a rejected row first (a segment unit) and a batch (a batch unit)
    _send(redis_url, contacts=[bad, *make_contacts(3, seed=1)], job_id="x", destinations=["jsonl", "stream"])
    _send(redis_url, contacts=[bad, *make_contacts(4, seed=2)], job_id="x:x", destinations=["jsonl", "stream"])
    first, second = wait_for_job(redis_url, "x"), wait_for_job(redis_url, "x:x")
    # Then
    _assert_accounted(first, 4)
    _assert_accounted(second, 5)
    assert sorted(o["index"] for o in read_stream(redis_url, "x")) == [0, 1, 2, 3]
    assert sorted(o["index"] for o in read_stream(redis_url, "x:x")) == [0, 1, 2, 3, 4]
    assert {o["job_id"] for o in read_stream(redis_url, "x:x")} == {"x:x"}


def test_a_long_job_id_gets_a_hashed_file_name_and_keeps_its_output(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 6: a 128-character job id (allowed) writes its whole file under a shortened, hashed name."""
    # Given
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    job_id = "crm-" + "a" * 124
    # When
    _send(redis_url, contacts=make_contacts(4), job_id=job_id)
    status = wait_for_job(redis_url, job_id)
    # Then
    _assert_accounted(status, 4)
    files = list(tmp_path.glob("crm-*.jsonl"))
    assert len(files) == 1 and len(files[0].name) < 80
    assert [json.loads(line)["index"] for line in files[0].read_text().splitlines()] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"job_id": "x\n"}, "job_id"),
        ({"job_id": "a" * 129}, "job_id"),
        ({"offset": 2**53 + 1}, "offset"),
        ({"offset": 10**18}, "offset"),
        ({"offset": MAX_INPUT_INDEX}, "offset"),
        ({"job_id": ""}, "job_id"),
        ({"job_id": 0}, "job_id"),
        ({"job_id": {}}, "job_id"),
        ({"destinations": []}, "destinations"),
    ],
)
def test_ids_and_offsets_that_could_break_the_store_are_refused(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, kwargs: dict[str, Any], argument: str
) -> None:
    """A job id ending in a newline, too long, empty or not a string, an offset too far, no destination: refused.

    The caller gets the error; the worker logs one warning line with the reason and no traceback.
    """
    worker = start_worker(worker_env(redis_url, sandbox, tmp_path))
    with pytest.raises(Exception) as refused:
        _send(redis_url, contacts=make_contacts(1), **kwargs)
    assert type(refused.value).__name__ == "JobOptionsError"
    assert str(refused.value).startswith(f"{argument} must be")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert not [k for k in client.scan_iter("dropq:job:*")], "nothing is stored for a refused call"
    client.close()
    time.sleep(0.5)
    log = worker.output()
    refused_lines = [line for line in log.splitlines() if '"call_refused"' in line]
    assert len(refused_lines) == 1 and '"level": "warning"' in refused_lines[0], log[-2000:]
    assert "Traceback" not in log and "raised unexpected" not in log


def test_a_part_whose_produce_failed_on_a_bug_has_its_records_failed_and_the_job_finishes(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """Path 7: produce committed one segment, then failed: the rest of the part is failed, the job finishes."""
    # Given: a part of 5 whose first segment (records 0 and 1, one batch) was committed before the bug
    # (the committed batch's submit is never sent: the sweep sends it once its 2 s stall timeout is over)
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_STALL_TIMEOUT_S="2")
    rt = build_runtime(from_env(env), Celery("give-up-test", broker=redis_url))
    contacts = make_contacts(5)
    rt.ledger.open("bug-1", JobOptions(), rt.now_ms())
    rt.ledger.register_part("bug-1", "0", final=True, end=5)
    records = [{**contacts[i], "custom_fields": {"dropq_ref": str(i)}} for i in (0, 1)]
    segment = SegmentCommit(
        "bug-1", "0/0", "bug-1/0/0", records, received=2, rejected=0, duplicates=0, outcomes=[], end=2
    )
    rt.batches.commit_segment(segment, ["jsonl"], rt.now_ms())
    # When: the task's last resort runs, then a worker carries the committed batch on
    followups = give_up_part(rt, "bug-1", 0, contacts, RuntimeError("boom"))
    assert [f.task for f in followups] == ["dropq.deliver"]
    start_worker(env)
    app = client_app(redis_url)
    try:
        for item in followups:
            app.send_task(item.task, kwargs=item.kwargs, queue="dropq.sink")
    finally:
        app.close()
    status = wait_for_job(redis_url, "bug-1", timeout_s=30)
    # Then
    _assert_accounted(status, 5)
    assert status.delivered == 2 and status.failed == 3
    outcomes = [json.loads(line) for line in (tmp_path / "bug-1.jsonl").read_text().splitlines()]
    assert [o["status"] for o in outcomes][2:] == ["failed"] * 3
    assert outcomes[2]["reason"] == "internal error in dropq.enrich: RuntimeError: boom"
