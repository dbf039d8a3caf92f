"""The result cache's part of the pipeline: a part's answers looked up, its questions claimed while in flight,
a batch's answers kept.

At produce (``plan_part``), the records of a part that the cache answers become outcomes with
``source: "cache"``; the others' questions are claimed for this job (``jobs.inflight``). When another
running job holds one of them, the part is held in Redis and looks again every ``INFLIGHT_CHECK_S``:
that job's answer comes through the cache, so the contact is paid once. At the sink, a batch's real
answers are written, then its claims freed (``settle_questions``), then the batch is closed: a sink run
again after a crash does both again, and nothing is left held. A failed batch frees
its claims before it closes too, and the part held behind it sends the contact itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from dropq.dropcontact.identities import identity_key, person_of
from dropq.dropcontact.joining import JoinedRecord, credits_kept
from dropq.dropcontact.records import PreparedRecord
from dropq.workers.cache import Answer, CacheError, cacheable, question_key
from dropq.workers.jobs.options import JobOptions
from dropq.workers.runtime import Runtime

__all__ = [
    "INFLIGHT_CHECK_S",
    "Plan",
    "plan_part",
    "cached_outcome",
    "cached_counts",
    "settle_questions",
    "release_questions",
]

_log = structlog.get_logger(__name__)

# A part waiting for answers another job is getting looks again this often.
INFLIGHT_CHECK_S = 2.0


@dataclass(frozen=True, slots=True)
class Plan:
    """What the cache says of a part: its answers by input index, or that it must wait (``wait_s``)."""

    answers: Mapping[int, Answer] = field(default_factory=dict)
    wait_s: float | None = None


def plan_part(rt: Runtime, job_id: str, firsts: Sequence[PreparedRecord], options: JobOptions) -> Plan:
    """The answers the cache holds for a part's records (the first of their identity in the job), and the
    other records' questions claimed (or the wait for another job's claims).

    A cache that cannot be read answers nothing and holds nothing back: the records go to the API.
    """
    if rt.cache is None or options.cache == "off":
        return Plan()
    records = [r for r in firsts if r.identity_key]
    keyed = [(r.index, _question(rt, str(r.identity_key), options)) for r in records]
    answers: dict[int, Answer] = {}
    if options.cache == "use" and keyed:
        try:
            found = rt.cache.answers([k for _, k in keyed], now_ms=rt.now_ms())
        except CacheError as exc:
            _log.warning("cache_unavailable", job_id=job_id, records=len(records), reason=str(exc))
            return Plan()
        person = {r.index: person_of(r.payload) for r in records}
        answers = {
            index: a for (index, _), a in zip(keyed, found, strict=True) if a is not None and a.answers(person[index])
        }
    asked = [k for index, k in keyed if index not in answers]
    if rt.inflight.claim(job_id, asked, wait=options.cache == "use"):
        return Plan(answers, INFLIGHT_CHECK_S)
    return Plan(answers)


def cached_outcome(job_id: str, index: int, payload: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """The outcome of a record answered from the cache: the cached answer with this record's own
    ``custom_fields``, ``source: "cache"`` and the time it was fetched."""
    record = dict(answer.record)
    if "custom_fields" in payload:
        record["custom_fields"] = payload["custom_fields"]
    return {
        "job_id": job_id,
        "index": index,
        "status": answer.status,
        "reason": answer.reason,
        "record": record,
        "input": payload,
        "best_email": answer.best_email,
        "qualification": answer.qualification,
        "source": "cache",
        "fetched_at": answer.fetched_at,
    }


def cached_counts(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """What a segment's answers from the cache add to the ledger."""
    cached = [o for o in outcomes if o.get("source") == "cache"]
    return {
        "enriched": sum(1 for o in cached if o["status"] == "enriched"),
        "not_found": sum(1 for o in cached if o["status"] == "not_found"),
        "credits_saved": credits_kept(cached),
    }


def settle_questions(
    rt: Runtime, job_id: str, joined: Sequence[JoinedRecord], outcomes: Sequence[Mapping[str, Any]], *, partial: bool
) -> None:
    """Before a batch closes: write its real answers to the cache, then free its claims on their questions.

    Done in that order, and before the close, so that a part held behind a claim finds the answer once the
    claim is gone, and a sink run again after a crash does both again (nothing is left held). Writing is
    best effort: a cache that cannot be written costs a later job its credits, never this job its results.
    Nothing of a batch fetched with ``forceResults`` is kept: its records may not all have been processed.
    """
    options = _options_with_claims(rt, job_id)
    if options is None:
        return
    questions = [(i, _question(rt, identity, options)) for i, identity in _identities(j.input for j in joined)]
    if rt.cache is not None and not partial:
        now_ms = rt.now_ms()
        entries = []
        for i, key in questions:
            outcome = outcomes[i]
            if cacheable(outcome):
                record = {k: v for k, v in outcome["record"].items() if k != "custom_fields"}
                answer = Answer(
                    outcome["status"], record, outcome["best_email"], outcome["qualification"], now_ms,
                    outcome["reason"], asked=person_of(joined[i].input),
                )  # fmt: skip
                entries.append((key, answer))
        try:
            rt.cache.keep(entries)
        except CacheError as exc:
            _log.warning("cache_unavailable", job_id=job_id, records=len(entries), reason=str(exc))
    rt.inflight.release(job_id, [key for _, key in questions])


def release_questions(rt: Runtime, job_id: str, records: Sequence[Mapping[str, Any]]) -> None:
    """Free the job's claims on these records' questions: their batch is about to close as failed."""
    options = _options_with_claims(rt, job_id)
    if options is not None:
        rt.inflight.release(job_id, [_question(rt, identity, options) for _, identity in _identities(records)])


def _options_with_claims(rt: Runtime, job_id: str) -> JobOptions | None:
    """The job's options when its batches may hold claims, else None (nothing to write or free).

    Every worker of a deployment with a cache configured frees claims, even one whose own cache could not be
    opened: the claims live in the deployment's Redis, and a part of another job may wait on them.
    """
    if rt.cache is None and not rt.settings.cache_url:
        return None
    options = rt.ledger.options(job_id)
    return None if options.cache == "off" else options


def _identities(records: Iterable[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """The position and identity of each record that names a person."""
    return [(i, identity) for i, record in enumerate(records) if (identity := identity_key(record))]


def _question(rt: Runtime, identity: str, options: JobOptions) -> bytes:
    """The question's digest: the cache's key and the claim's name (``cache.question_key``)."""
    return question_key(rt.digest_key, identity, siren=options.siren, language=options.language)
