"""Shared requests: calls of a contact or two, from many jobs, share POSTs; each job still gets only its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.jobs.batch import BatchState, SegmentCommit
from dropq.workers.jobs.options import JobOptions
from dropq.workers.jobs.sharing import pool_of
from dropq.workers.jobs.watchdog import batch_member, parse_member
from dropq.workers.pipeline.shared import hand_on_results
from dropq.workers.pipeline.submit import AUTH_FAILED_REASON
from dropq.workers.pipeline.sweep import rederive
from dropq.workers.runtime import Runtime, build_runtime
from tests.support.contacts import make_contacts
from tests.support.pipeline import read_stream, send_calls, wait_for_job, worker_env

JOBS = 30


def _jsonl(out: Path, job_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / f"{job_id}.jsonl").read_text().splitlines()]


def test_calls_of_two_contacts_share_requests_and_each_job_gets_only_its_own(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """30 jobs of 2 contacts: a few POSTs in all; each job's outcomes, in order, in its own destinations."""
    # Given: 30 calls of 2 distinct contacts each, half to the file, half to the stream
    start_worker(worker_env(redis_url, sandbox, tmp_path))
    contacts = make_contacts(2 * JOBS, seed=11)
    half = JOBS  # contacts of the first 15 calls
    # When
    files = send_calls(redis_url, "file", contacts[:half], destinations=["jsonl"])
    streams = send_calls(redis_url, "stream", contacts[half:], destinations=["stream"])
    # Then: every job has its 2 contacts back, in its own input order, in its own destination only
    for n, job_id in enumerate(files + streams):
        status = wait_for_job(redis_url, job_id, timeout_s=60)
        assert status.received == 2 and status.delivered == 2 and status.failed == 0, status
        outcomes = _jsonl(tmp_path, job_id) if job_id in files else read_stream(redis_url, job_id)
        assert [o["index"] for o in outcomes] == [0, 1]
        assert [o["input"]["custom_fields"]["crm_id"] for o in outcomes] == [
            c["custom_fields"]["crm_id"] for c in contacts[2 * n : 2 * n + 2]
        ]
        assert {o["job_id"] for o in outcomes} == {job_id}
        assert (tmp_path / f"{job_id}.jsonl").exists() == (job_id in files)
    # And: the 60 records went in a few requests, each record once
    stats = sandbox.stats()
    assert stats["records_received"] == 2 * JOBS and stats["duplicate_records_posted"] == 0
    assert stats["batches_received"] <= JOBS // 5, stats["batches_received"]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.zcard(keys.pool_key(pool_of(False, None))) == 0


def test_without_a_linger_each_call_is_its_own_request(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """``DROPQ_COALESCE_LINGER_S=0`` switches sharing off: the per-call behaviour, one POST per call."""
    start_worker(worker_env(redis_url, sandbox, tmp_path, DROPQ_COALESCE_LINGER_S="0"))
    for job_id in send_calls(redis_url, "solo", make_contacts(10, seed=12)):
        assert wait_for_job(redis_url, job_id, timeout_s=60).delivered == 2
    assert sandbox.stats()["batches_received"] == 5


def test_a_refused_token_fails_each_shared_record_in_its_own_job(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A shared request the API refuses (401): every job it carries fails its records with the reason."""
    start_worker(worker_env(redis_url, sandbox, tmp_path, DROPCONTACT_API_KEY="not-a-key"))
    for job_id in send_calls(redis_url, "nokey", make_contacts(20, seed=13)):
        status = wait_for_job(redis_url, job_id, timeout_s=60)
        assert status.received == 2 and status.failed == 2, status
        outcomes = _jsonl(tmp_path, job_id)
        assert [(o["index"], o["status"], o["reason"]) for o in outcomes] == [
            (0, "failed", AUTH_FAILED_REASON),
            (1, "failed", AUTH_FAILED_REASON),
        ]
    assert sandbox.stats()["records_received"] == 0


def _runtime(redis_url: str, sandbox: Any, tmp_path: Path) -> Runtime:
    env = worker_env(redis_url, sandbox, tmp_path)
    return build_runtime(from_env(env), Celery("shared-test", broker=redis_url))


def _committed_batch(rt: Runtime, job_id: str, n: int) -> str:
    """A job of ``n`` contacts whose one batch is committed (pending); its id."""
    rt.ledger.open(job_id, JobOptions(), rt.now_ms())
    rt.ledger.register_part(job_id, "0", final=True, end=n)
    records = [
        {**contact, "custom_fields": {"dropq_ref": f"{i}.{job_id}"}} for i, contact in enumerate(make_contacts(n))
    ]
    batch_id = f"{job_id}/0/0"
    segment = SegmentCommit(job_id, "0/0", batch_id, records, received=n, rejected=0, duplicates=0, outcomes=[], end=n)
    assert rt.batches.commit_segment(segment, ["jsonl"], rt.now_ms())
    return batch_id


def _shared_of(rt: Runtime, *batch_ids: str) -> str:
    pool = pool_of(False, None)
    for batch_id in batch_ids:
        batch = rt.batches.get(batch_id)
        assert batch is not None and rt.shared.join(batch, pool, rt.now_ms()).code == 1
    sealed = rt.shared.seal(pool, siren=False, language=None, now_ms=rt.now_ms())
    assert sealed.shared_id
    return sealed.shared_id


def test_results_in_any_order_go_to_the_batch_that_sent_each_record(
    redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """The shared request's results, reversed: each carried batch gets exactly its own records' results."""
    rt = _runtime(redis_url, sandbox, tmp_path)
    first, second = _committed_batch(rt, "order-a", 3), _committed_batch(rt, "order-b", 2)
    shared_id = _shared_of(rt, first, second)
    shared = rt.batches.get(shared_id)
    assert shared is not None and shared.members == (first, second) and shared.count == 5
    sent = rt.batches.records(shared_id)
    assert [r["custom_fields"]["dropq_ref"] for r in sent] == [
        "0.order-a",
        "1.order-a",
        "2.order-a",
        "0.order-b",
        "1.order-b",
    ]
    # Given: the API answered, in reverse order
    rt.batches.transition(shared_id, (BatchState.PENDING,), to=BatchState.SUBMITTED, request_id="r-1", submitted_ms=1)
    answers = [{**record, "email": [{"email": "x@y.fr"}]} for record in reversed(sent)]
    assert rt.batches.fetch(shared_id, answers, partial=False, now_ms=1)
    # When
    fetched = rt.batches.get(shared_id)
    assert fetched is not None
    followups = hand_on_results(rt, fetched)
    # Then: both batches fetched with their own results, their sinks sent, the shared request closed
    assert sorted(f.kwargs["batch_id"] for f in followups) == sorted([first, second])
    for batch_id, job_id in ((first, "order-a"), (second, "order-b")):
        results = rt.batches.results(batch_id)
        assert results is not None
        assert {r["custom_fields"]["dropq_ref"].split(".", 1)[1] for r in results} == {job_id}
        assert len(results) == rt.batches.get(batch_id).count  # type: ignore[union-attr]
        assert rt.watchdog.deadline_of(batch_member(batch_id)) is not None
    closed = rt.batches.get(shared_id)
    assert closed is not None and closed.state is BatchState.DONE
    assert rt.batches.records(shared_id) == [] and rt.watchdog.deadline_of(batch_member(shared_id)) is None


def test_a_carried_batch_whose_shared_request_vanished_is_sent_alone(
    redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """The sweep finds a carried batch overdue with its shared request gone: it goes back, alone, to submit."""
    rt = _runtime(redis_url, sandbox, tmp_path)
    first, second = _committed_batch(rt, "orphan-a", 2), _committed_batch(rt, "orphan-b", 2)
    shared_id = _shared_of(rt, first, second)
    watched = parse_member(batch_member(first))
    assert watched is not None
    # While the shared request is open, a carried batch needs nothing
    assert rederive(rt, watched) == []
    # When: the shared request is lost (its keys expired or were evicted)
    rt.redis.delete(keys.batch_key(shared_id), keys.batch_records_key(shared_id))
    # Then
    followups = rederive(rt, watched)
    batch = rt.batches.get(first)
    assert batch is not None and batch.state is BatchState.PENDING and batch.solo and not batch.carrier
    assert [(f.task, f.kwargs) for f in followups] == [("dropq.submit", {"batch_id": first, "seq": batch.seq})]
