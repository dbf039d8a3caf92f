"""The batch state machine's scripts against real Redis: claims, leases, results, TTLs."""

from __future__ import annotations

import pytest
import redis

from dropq.workers import keys
from dropq.workers.jobs.batch import BatchState, SegmentCommit, TransitionRefused
from dropq.workers.jobs.batches import BatchStore
from dropq.workers.jobs.ledger import JobLedger
from dropq.workers.jobs.options import JobOptions
from dropq.workers.jobs.outcomes import OutcomeStore, batch_unit_id, segment_unit_id
from dropq.workers.jobs.watchdog import Watchdog

TTL_S = 600


@pytest.fixture
def store(redis_client: redis.Redis) -> BatchStore:
    """A store with one pending batch ``j/0/0`` of one record."""
    JobLedger(redis_client, TTL_S).open("j", JobOptions(), now_ms=1)
    batches = BatchStore(redis_client, TTL_S, Watchdog(redis_client, 60_000, TTL_S))
    record = {"first_name": "Ada", "website": "acme.example", "custom_fields": {"dropq_ref": "0"}}
    batches.commit_segment(SegmentCommit("j", "0/0", "j/0/0", [record], 1, 0, 0, []), destinations=["jsonl"], now_ms=1)
    return batches


def test_a_claim_holds_the_batch_against_a_second_message_with_the_same_seq(store: BatchStore) -> None:
    """Two submits with one seq: the second cannot claim while the first one's lease runs."""
    claim = store.claim("j/0/0", seq=0, now_ms=1_000, lease_until_ms=46_000)
    assert claim == (0, False)
    with pytest.raises(TransitionRefused) as refused:
        store.claim("j/0/0", seq=0, now_ms=2_000, lease_until_ms=47_000)
    assert refused.value.code == -4


def test_a_claim_after_an_expired_lease_is_in_doubt(store: BatchStore) -> None:
    """A batch left posting by a dead worker is claimed again once the lease is over, and flagged in doubt."""
    store.claim("j/0/0", seq=0, now_ms=1_000, lease_until_ms=46_000)
    assert store.claim("j/0/0", seq=0, now_ms=46_001, lease_until_ms=90_000)[:2] == (0, True)


def test_a_batch_marked_in_doubt_is_claimed_in_doubt(store: BatchStore) -> None:
    """A POST whose answer was lost marks the batch; its next claim says the POST may repeat."""
    store.claim("j/0/0", seq=0, now_ms=1_000, lease_until_ms=46_000)
    store.transition("j/0/0", (BatchState.POSTING,), seq=0, to=BatchState.PENDING, bump=True, in_doubt=1)
    assert store.claim("j/0/0", seq=1, now_ms=2_000, lease_until_ms=47_000)[:2] == (1, True)
    assert store.claim("j/0/0", seq=1, now_ms=50_000, lease_until_ms=95_000)[:2] == (1, True)  # lease expired


def test_a_claim_given_back_unsent_leaves_the_doubt_it_found(store: BatchStore) -> None:
    """submit claims before its rate slot; a slot missed gives the claim back, and no re-POST is counted for it."""
    claimed, in_doubt = store.claim("j/0/0", seq=0, now_ms=1_000, lease_until_ms=46_000)
    store.transition("j/0/0", (BatchState.POSTING,), seq=claimed, to=BatchState.PENDING, lease_until_ms=0,
                     in_doubt=int(in_doubt))  # fmt: skip
    assert store.claim("j/0/0", seq=0, now_ms=2_000, lease_until_ms=47_000) == (0, False)  # at once, not in doubt
    # A claim that found the batch in doubt (its worker died inside the POST) gives the doubt back with it.
    claimed, in_doubt = store.claim("j/0/0", seq=0, now_ms=47_001, lease_until_ms=90_000)
    assert in_doubt
    store.transition("j/0/0", (BatchState.POSTING,), seq=claimed, to=BatchState.PENDING, lease_until_ms=0,
                     in_doubt=int(in_doubt))  # fmt: skip
    assert store.claim("j/0/0", seq=0, now_ms=48_000, lease_until_ms=93_000) == (0, True)


def test_a_stale_seq_cannot_claim(store: BatchStore) -> None:
    """A message whose seq is behind the batch's stops there."""
    store.transition("j/0/0", (BatchState.PENDING,), bump=True)
    with pytest.raises(TransitionRefused) as refused:
        store.claim("j/0/0", seq=0, now_ms=1, lease_until_ms=2)
    assert refused.value.code == -3


def test_results_are_kept_once_and_only_while_submitted(store: BatchStore) -> None:
    """A push and a forced poll racing: the first results win, the second change nothing."""
    store.transition("j/0/0", (BatchState.PENDING,), to=BatchState.SUBMITTED, request_id="r1")
    assert store.fetch("j/0/0", [{"first_name": "Ada", "email": []}], partial=False, now_ms=5)
    assert not store.fetch("j/0/0", [{"first_name": "partial"}], partial=True, now_ms=6)
    batch = store.get("j/0/0")
    assert batch is not None and batch.state is BatchState.FETCHED and batch.partial is False
    assert store.results("j/0/0") == [{"first_name": "Ada", "email": []}]


def test_a_transition_renews_the_batch_ttl(store: BatchStore, redis_client: redis.Redis) -> None:
    """A batch lives DROPQ_JOB_TTL_S after its last transition, not after its creation."""
    redis_client.expire(keys.batch_key("j/0/0"), 5)
    store.transition("j/0/0", (BatchState.PENDING,), bump=True)
    assert redis_client.ttl(keys.batch_key("j/0/0")) > 5


def test_opening_a_job_twice_keeps_the_first_options(redis_client: redis.Redis) -> None:
    """The same job id twice is one job; the options of the first call stay."""
    ledger = JobLedger(redis_client, TTL_S)
    assert ledger.open("k", JobOptions(language="en"), now_ms=1)
    assert not ledger.open("k", JobOptions(language="fr"), now_ms=2)
    assert ledger.options("k").language == "en"


def test_a_job_with_its_final_part_but_not_its_first_is_not_ready_to_finish(redis_client: redis.Redis) -> None:
    """The final part arrived and was produced, the parts before it did not: the job waits for them."""
    ledger = JobLedger(redis_client, TTL_S)
    ledger.open("late", JobOptions(), now_ms=1)
    ledger.register_part("late", "10", final=True, end=12)
    BatchStore(redis_client, TTL_S, Watchdog(redis_client, 60_000, TTL_S)).commit_segment(
        SegmentCommit("late", "10/0", None, [], received=2, rejected=2, duplicates=0, outcomes=[]),
        destinations=[],
        now_ms=1,
    )
    ledger.mark_part_produced("late", "10", 10, 12)
    assert not ledger.is_ready_to_finish("late")
    ledger.register_part("late", "0", final=False, end=10)
    BatchStore(redis_client, TTL_S, Watchdog(redis_client, 60_000, TTL_S)).commit_segment(
        SegmentCommit("late", "0/0", None, [], received=10, rejected=10, duplicates=0, outcomes=[]),
        destinations=[],
        now_ms=1,
    )
    ledger.mark_part_produced("late", "0", 0, 10)
    assert ledger.is_ready_to_finish("late")


def test_units_of_jobs_whose_ids_share_a_prefix_are_kept_apart(redis_client: redis.Redis) -> None:
    """Job ``x``'s batch unit and job ``x:x``'s segment unit were both ``x:x:0:0``: the later overwrote the other."""
    # Given: job x:x's rejected record waiting for its delivery
    ledger = JobLedger(redis_client, TTL_S)
    store = BatchStore(redis_client, TTL_S, Watchdog(redis_client, 60_000, TTL_S))
    for job_id in ("x", "x:x"):
        ledger.open(job_id, JobOptions(), now_ms=1)
    reject = {"job_id": "x:x", "index": 0, "status": "rejected", "reason": "r", "record": None, "input": {}}
    store.commit_segment(SegmentCommit("x:x", "0/0", None, [], 1, 1, 0, [reject]), destinations=["jsonl"], now_ms=1)
    # When: job x's first batch closes with its own outcome
    record = {"first_name": "Ada", "website": "acme.example", "custom_fields": {"dropq_ref": "0"}}
    store.commit_segment(SegmentCommit("x", "0/0", "x/0/0", [record], 1, 0, 0, []), destinations=["jsonl"], now_ms=1)
    store.transition("x/0/0", (BatchState.PENDING,), to=BatchState.FETCHED, request_id="r1")
    batch = store.get("x/0/0")
    assert batch is not None
    enriched = {"job_id": "x", "index": 0, "status": "enriched", "reason": None, "record": record, "input": record}
    store.complete(batch, (BatchState.FETCHED,), BatchState.DONE, enriched=1, not_found=0, failed=0,
                   outcomes=[enriched], destinations=["jsonl"], now_ms=2)  # fmt: skip
    # Then: each job's unit holds its own outcome
    outcomes = OutcomeStore(redis_client, TTL_S)
    units = {"x:x": segment_unit_id("x:x", "0/0"), "x": batch_unit_id("x/0/0")}
    assert units["x:x"] != units["x"]
    assert [o["job_id"] for o in outcomes.load(units["x:x"]) or []] == ["x:x"]
    assert [o["job_id"] for o in outcomes.load(units["x"]) or []] == ["x"]
