"""Produce: turn one input part into segments (a batch, and the rejected and duplicate records before it).

Every record is accounted for here: valid and new ones go into a batch;
invalid ones become ``rejected`` outcomes with the rule they break; repeats of
an earlier record of the job become ``duplicate`` outcomes naming it, and
never cost a credit. Segment and batch ids are derived from the part and the
segment's first input index, and a redelivered produce goes on from the first
index no committed segment covers, so nothing is ever counted twice.

Parts are produced in input order, so that of two equal records the later
one is the duplicate. A part that arrives before its turn is parked in Redis
once (``jobs.parked``); the producer of the part ahead of it wakes it with a
``dropq.produce`` message that carries only its offset. A check message per
parked part comes back every ``ORDER_CHECK_S``: a part that waited that long
without any part of the job being produced goes on (the caller may have left
a gap in its offsets), and a wake-up lost to a crash is made good.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import structlog

from dropq.dropcontact.batching import batch_payload, split_into_segments
from dropq.dropcontact.records import MAX_BATCH_RECORDS, PreparedRecord, Rejection, prepare_records
from dropq.workers.cache import Answer
from dropq.workers.jobs.batch import SegmentCommit
from dropq.workers.jobs.outcomes import segment_unit_id
from dropq.workers.jobs.parked import ParkedPart, ParkedParts
from dropq.workers.jobs.seen import SeenRecords
from dropq.workers.jobs.watchdog import parked_member
from dropq.workers.limiter import gcra
from dropq.workers.pipeline import followup
from dropq.workers.pipeline.cached import cached_counts, cached_outcome, plan_part
from dropq.workers.pipeline.finish import finish_if_complete
from dropq.workers.pipeline.followup import Followup
from dropq.workers.pipeline.shared import shares_requests
from dropq.workers.runtime import Runtime

__all__ = [
    "produce_part",
    "produce_parked",
    "fail_part",
    "batch_id_for",
    "segment_id_for",
    "correlation_id_for",
    "ORDER_CHECK_S",
]

_log = structlog.get_logger(__name__)

# A parked part looks again this often; with no part of the job produced in between, it goes on.
ORDER_CHECK_S = 30.0
# The segment number of the records a failed produce could not commit (after any real segment of a part).
_FAILED_SEGMENT = 10**9


def segment_id_for(part_id: str, start: int) -> str:
    """The id of a segment inside its job: ``{part}/{its first input index}``."""
    return f"{part_id}/{start}"


def batch_id_for(job_id: str, part_id: str, start: int) -> str:
    """The id of the batch closing a segment: ``{job}/{part}/{segment's first index}`` (job ids hold no ``/``)."""
    return f"{job_id}/{segment_id_for(part_id, start)}"


def correlation_id_for(index: int, secret: str = "") -> str:
    """Our id for the record at ``index`` of the job's input, sent in ``custom_fields``: ``{index}.{secret}``.

    The job's secret makes the ids of one job unguessable from another's, so a push copied from
    another job (or batch) never joins in (``webhooks.holds_batch_records``).
    """
    return f"{index}.{secret}" if secret else str(index)


def _windows(items: Iterator[PreparedRecord | Rejection], size: int) -> Iterator[list[PreparedRecord | Rejection]]:
    while window := list(islice(items, size)):
        yield window


def produce_part(rt: Runtime, job_id: str, part_id: str, offset: int, contacts: Sequence[Any]) -> list[Followup]:
    """Produce one part of a job's input now, or park it until the parts before it are produced.

    Returns:
        The submits of the new batches, the deliveries of rejected/duplicate outcomes, the wake-up of the
        parked part next in line, and the finish check; or, for a part parked, its check message.
    """
    through = rt.ledger.produced_through(job_id)
    if offset > through:
        parked = ParkedParts(rt.redis, rt.settings.job_ttl_s)
        if parked.park(job_id, offset, ParkedPart(part_id, list(contacts))):
            return [followup.produce(job_id, offset, checked_through=through, countdown_s=ORDER_CHECK_S)]
    return _produce(rt, job_id, part_id, offset, contacts)


def produce_parked(rt: Runtime, job_id: str, offset: int, checked_through: int | None = None) -> list[Followup]:
    """Produce the part parked at ``offset`` if its turn has come (a wake-up), or on a check, if it must go on.

    Args:
        rt: the runtime.
        job_id: the job.
        offset: the parked part's offset.
        checked_through: for a check message, how far the job's input was produced at the previous look.

    Returns:
        What producing the part returns; the next check while it still waits; nothing when it is gone.
    """
    part = ParkedParts(rt.redis, rt.settings.job_ttl_s).load(job_id, offset)
    if part is None:
        # Produced already (a duplicate wake-up, or the check of a part woken in time).
        return []
    through = rt.ledger.produced_through(job_id)
    if offset > through:
        if checked_through is None:
            # A wake-up that came early: the part's own check message still stands.
            return []
        held = ParkedParts(rt.redis, rt.settings.job_ttl_s).is_parked(job_id, through)
        if through != checked_through or held:
            # Parts came in since the last look, or the part in its turn is held for answers in flight: no gap.
            return [followup.produce(job_id, offset, checked_through=through, countdown_s=ORDER_CHECK_S)]
        _log.warning("part_order_gap", job_id=job_id, part_id=part.part_id, offset=offset, produced_through=through)
    return _produce(rt, job_id, part.part_id, offset, part.contacts)


def _produce(rt: Runtime, job_id: str, part_id: str, offset: int, contacts: Sequence[Any]) -> list[Followup]:
    """Validate, de-duplicate and batch one part of a job's input; commit each segment once.

    A produce run again (a redelivery after a crash, a part that waited) goes on from the first input index
    no committed segment covers (``committed_through``), and a segment is named by its first index: what
    the first run committed is never counted again, whatever the cache answers this time, and the rest is
    planned anew. (The steps of the segments committed before are re-sent by the watchdog.)

    A part some of whose contacts another running job is asking the API about now waits for those
    answers (held in Redis, looked at again shortly) rather than paying for them twice.
    """
    options = rt.ledger.options(job_id)
    secret = rt.ledger.ref_secret(job_id)
    start = max(offset, rt.ledger.committed_through(job_id, part_id, offset))
    rest = contacts[start - offset :]
    prepared = list(prepare_records(rest, correlation_id=lambda i: correlation_id_for(i, secret), start_index=start))
    first_of = _first_seen(rt, job_id, prepared)
    # Only the first record of each identity in the job is ever answered or sent: the others are duplicates.
    firsts = [r for r in prepared if isinstance(r, PreparedRecord) and first_of.get(r.index) == r.index]
    plan = plan_part(rt, job_id, firsts, options)
    if plan.wait_s is not None:
        ParkedParts(rt.redis, rt.settings.job_ttl_s).hold(job_id, offset, ParkedPart(part_id, list(contacts)))
        _log.info("part_waits_for_answers", job_id=job_id, part_id=part_id, offset=offset, check_in_s=plan.wait_s)
        return [followup.produce(job_id, offset, checked_through=offset, countdown_s=plan.wait_s)]
    destinations = rt.destinations.names_for(options)
    followups: list[Followup] = []
    segments = 0
    end = start
    for segment in split_into_segments(_classified(job_id, start, rest, prepared, first_of, plan.answers)):
        segment_id = segment_id_for(part_id, end)
        batch_id = batch_id_for(job_id, part_id, end) if segment.records else None
        end += segment.received
        segments += 1
        commit = SegmentCommit(
            job_id=job_id,
            end=end,
            segment_id=segment_id,
            batch_id=batch_id,
            records=batch_payload(segment.records),
            received=segment.received,
            rejected=sum(1 for outcome in segment.others if outcome["status"] == "rejected"),
            duplicates=sum(1 for outcome in segment.others if outcome["status"] == "duplicate"),
            outcomes=segment.others,
            **cached_counts(segment.others),
            lane=gcra.FIRST_LANE if options.interactive else gcra.BULK_LANE,
        )
        rt.batches.commit_segment(commit, destinations, rt.now_ms())
        if batch_id:
            # A batch that is not full only joins its pool (``pipeline.shared``): this task does it.
            followups.append(followup.submit(batch_id, seq=0, inline=shares_requests(rt, len(segment.records))))
        if segment.others:
            unit_id = segment_unit_id(job_id, segment_id)
            followups.extend(
                followup.deliver(job_id, unit_id, name, inline=rt.destinations.is_local(name)) for name in destinations
            )
    _log.info("part_produced", job_id=job_id, part_id=part_id, records=len(contacts), segments=segments,
              resumed_at=start if start > offset else None)  # fmt: skip
    return followups + _part_done(rt, job_id, part_id, offset, offset + len(contacts))


def _part_done(rt: Runtime, job_id: str, part_id: str, offset: int, end: int) -> list[Followup]:
    """Mark the part produced; wake the parked part next in line; the finish check."""
    rt.ledger.mark_part_produced(job_id, part_id, offset, end)
    # After the mark: a part parked before it is found here, and a part parking after it sees its turn.
    next_offset = ParkedParts(rt.redis, rt.settings.job_ttl_s).produced(job_id, offset)
    rt.watchdog.disarm(parked_member(job_id, offset))
    followups = [followup.produce(job_id, next_offset)] if next_offset is not None else []
    return followups + finish_if_complete(rt, job_id)


def fail_part(
    rt: Runtime, job_id: str, part_id: str, offset: int, contacts: Sequence[Any], reason: str
) -> list[Followup]:
    """Fail the records of a part its produce could not commit (it failed on a bug), so the job still finishes.

    The segments committed before the failure stand; every record after them is ``failed`` with ``reason``.
    """
    through = rt.ledger.committed_through(job_id, part_id, offset)
    options = rt.ledger.options(job_id)
    destinations = rt.destinations.names_for(options)
    outcomes = [
        _outcome(job_id, index, "failed", reason, contacts[index - offset])
        for index in range(through, offset + len(contacts))
    ]
    followups: list[Followup] = []
    if outcomes:
        segment_id = segment_id_for(part_id, _FAILED_SEGMENT)
        commit = SegmentCommit(
            job_id=job_id,
            end=offset + len(contacts),
            segment_id=segment_id,
            batch_id=None,
            records=[],
            received=len(outcomes),
            rejected=0,
            duplicates=0,
            failed=len(outcomes),
            outcomes=outcomes,
        )
        rt.batches.commit_segment(commit, destinations, rt.now_ms())
        rt.ledger.note_failure(job_id, reason)
        unit_id = segment_unit_id(job_id, segment_id)
        followups += [followup.deliver(job_id, unit_id, name) for name in destinations]
    _log.error("part_failed", job_id=job_id, part_id=part_id, records=len(outcomes), reason=reason)
    return followups + _part_done(rt, job_id, part_id, offset, offset + len(contacts))


def _first_seen(rt: Runtime, job_id: str, prepared: Sequence[PreparedRecord | Rejection]) -> dict[int, int]:
    """The index of the job's first record of each record's identity (itself when it is the first), by index.

    One round trip per window of records, not one per record; asking again for the same records (a redelivery,
    a part that waited) gives the same answers.
    """
    seen = SeenRecords(rt.redis, rt.settings.job_ttl_s, rt.digest_key)
    first_of: dict[int, int] = {}
    for window in _windows(iter(prepared), MAX_BATCH_RECORDS):
        candidates = [item for item in window if isinstance(item, PreparedRecord) and item.identity_key]
        firsts = seen.first_indexes(job_id, [(str(c.identity_key), c.index) for c in candidates])
        first_of.update((c.index, first) for c, first in zip(candidates, firsts, strict=True))
    return first_of


def _classified(
    job_id: str,
    offset: int,
    contacts: Sequence[Any],
    prepared: Sequence[PreparedRecord | Rejection],
    first_of: Mapping[int, int],
    answers: Mapping[int, Answer],
) -> Iterator[PreparedRecord | dict[str, Any]]:
    """Each input item in order: a record to send, or the outcome of one that is not sent (rejected, duplicate,
    answered from the result cache)."""
    for item in prepared:
        if isinstance(item, Rejection):
            raw = contacts[item.index - offset]
            yield _outcome(job_id, item.index, "rejected", item.message, raw, rule=item.rule)
            continue
        first = first_of.get(item.index, item.index)
        if first != item.index:
            reason = f"record {item.index}: duplicate of record {first} (same {_identity_kind(item)})"
            yield _outcome(job_id, item.index, "duplicate", reason, item.payload, first=first)
            continue
        answer = answers.get(item.index)
        yield item if answer is None else cached_outcome(job_id, item.index, item.payload, answer)


def _identity_kind(record: PreparedRecord) -> str:
    key = str(record.identity_key)
    return key.split(":", 1)[0] if ":" in key else "identity"


def _outcome(
    job_id: str, index: int, status: str, reason: str, raw: Any, *, rule: str | None = None, first: int | None = None
) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "job_id": job_id,
        "index": index,
        "status": status,
        "reason": reason,
        "record": None,
        # Rejected rows are reported with their input as given (it came through JSON, so it is JSON).
        "input": raw,
    }
    if rule is not None:
        outcome["rule"] = str(rule)
    if first is not None:
        outcome["duplicate_of"] = first
    return outcome
