"""The batch state machine in Redis.

States and the transitions between them (each one atomic, see transition.lua):

    pending --claim--> posting --accepted--> submitted --results--> fetched --sink--> done
       ^                  |                      |
       +--- wait/retry ---+                      +--> failed (also from pending/posting)
       |                  |
       |                  +--400 invalid--> split (two new pending halves)
       |
       +--shared--> carried --its shared request's results--> fetched
                        (back to pending, alone, if that request was refused)

A batch that is not full may share one POST with other jobs' batches
(``jobs.sharing``): it waits in a pool, then is ``carried`` by a shared
request, itself a batch of this machine (id ``~shared/...``, no job of its
own) whose records are its batches' end to end. The shared request is
claimed, POSTed and polled like any batch; its results are handed to each
batch it carries, which goes on to its own sink, counts and deliveries.

A batch is POSTed at most once: the claim moves it to ``posting`` with a
lease; the ``request_id`` is written the moment the API answers. A worker
that finds ``posting`` with an expired lease knows the previous attempt died
between the POST and that write (the one unavoidable window) and counts the
re-POST in the job's ``resubmitted``. Leases and deadlines are in Redis time.

Every script that writes a batch also keeps its watch (``jobs.watchdog``):
a new batch is watched from its commit, a closed one hands over to its
deliveries, a split one to its halves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import redis

from dropq.errors import WorkerError
from dropq.workers import keys
from dropq.workers.jobs.outcomes import batch_unit_id, job_of_unit, segment_unit_id
from dropq.workers.jobs.scripts import load_script
from dropq.workers.jobs.watchdog import Watchdog, batch_member, delivery_member
from dropq.workers.limiter import gcra
from dropq.workers.metrics import fields

__all__ = [
    "Batch",
    "BatchState",
    "BatchStore",
    "Claim",
    "OPEN_STATES",
    "SHARED_PREFIX",
    "SegmentCommit",
    "TransitionRefused",
    "is_shared",
]


class BatchState(StrEnum):
    """Where a batch stands."""

    PENDING = "pending"
    POSTING = "posting"
    SUBMITTED = "submitted"
    FETCHED = "fetched"
    DONE = "done"
    FAILED = "failed"
    SPLIT = "split"
    # Waiting for the shared request that carries it (``jobs.sharing``).
    CARRIED = "carried"


_STATE_NAMES = frozenset(BatchState)

# States in which a batch still waits for its outcomes (it can still be failed).
OPEN_STATES = (
    BatchState.PENDING,
    BatchState.POSTING,
    BatchState.SUBMITTED,
    BatchState.FETCHED,
    BatchState.CARRIED,
)
# The ids of shared requests (several jobs' batches in one POST) start so; no job id can.
SHARED_PREFIX = "~shared/"


class TransitionRefused(WorkerError):
    """A compare-and-set on a batch did not apply (state moved on, or the message is stale)."""

    def __init__(self, batch_id: str, code: int) -> None:
        super().__init__(f"batch {batch_id}: transition refused ({_REFUSALS.get(code, code)})")
        self.batch_id = batch_id
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.batch_id, self.code))


_REFUSALS = {-1: "no such batch", -2: "state not allowed", -3: "stale message", -4: "leased to another worker"}


@dataclass(frozen=True, slots=True)
class Batch:
    """A snapshot of a batch's state."""

    batch_id: str
    job_id: str
    state: BatchState
    seq: int
    count: int
    request_id: str = ""
    submitted_ms: int = 0
    lease_until_ms: int = 0
    polls: int = 0
    looked_ms: int = 0
    errors: int = 0
    callback_token: str = ""
    reason: str = ""
    partial: bool = False
    in_doubt: bool = False
    doubt_ms: int = 0
    created_ms: int = 0
    fetched_ms: int = 0
    fetched_via: str = ""
    # The limiter lane of its requests: "first" (an interactive job's) or "bulk".
    lane: str = gcra.BULK_LANE
    # A shared request: the batches it carries, and the options of its POST.
    members: tuple[str, ...] = ()
    siren: bool = False
    language: str | None = None
    # A carried batch: the shared request that carries it.
    carrier: str = ""
    # Sent alone, never pooled (a split half, a batch of a refused shared request).
    solo: bool = False

    @property
    def is_shared(self) -> bool:
        """Whether this is a shared request, carrying other batches."""
        return is_shared(self.batch_id)

    @property
    def job_ids(self) -> tuple[str, ...]:
        """The jobs whose records this batch sends: its own, or each carried batch's (one per batch)."""
        return tuple(job_of_unit(member) for member in self.members) if self.is_shared else (self.job_id,)

    @property
    def last_look_s(self) -> float:
        """The batch's age at its last "not ready" answer; 0 before any."""
        return max(0.0, (self.looked_ms - self.submitted_ms) / 1000) if self.looked_ms and self.submitted_ms else 0.0


class Claim(NamedTuple):
    """A claim that succeeded: the batch's seq, and whether its POST may repeat an earlier one."""

    seq: int
    in_doubt: bool


@dataclass(frozen=True, slots=True)
class SegmentCommit:
    """One produced segment: an optional batch and the rejected/duplicate records met before it.

    ``segment_id`` is ``{part}/{number}``; ``end`` (the input index after the segment) records how far
    its part was committed.
    """

    job_id: str
    segment_id: str
    batch_id: str | None
    records: list[dict[str, Any]]
    received: int
    rejected: int
    duplicates: int
    outcomes: list[dict[str, Any]]
    end: int = 0
    failed: int = 0
    # Records answered from the result cache (among ``outcomes``): delivered without a request.
    enriched: int = 0
    not_found: int = 0
    credits_saved: int = 0
    # The batch's lane at the limiter (its job's priority).
    lane: str = gcra.BULK_LANE

    @property
    def part_id(self) -> str:
        """The part the segment belongs to."""
        return self.segment_id.split("/", 1)[0]


class BatchStore:
    """Creates batches and moves them through their states.

    Args:
        client: a Redis client (``decode_responses=True``).
        ttl_s: the TTL of every batch key.
        watchdog: where the batches' deadlines are kept.
    """

    def __init__(self, client: redis.Redis, ttl_s: int, watchdog: Watchdog) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._watchdog = watchdog
        self._commit = load_script(client, "commit_segment")
        self._transition = load_script(client, "transition")
        self._complete = load_script(client, "complete_batch")
        self._split = load_script(client, "split_batch")
        self._claim = load_script(client, "claim")
        self._fetch = load_script(client, "fetch")

    def commit_segment(self, segment: SegmentCommit, destinations: Sequence[str], now_ms: int) -> bool:
        """Store a segment's batch and count its records, once, and watch them.

        Returns:
            False when it was committed before (or its job is gone): nothing was written.
        """
        batch_id = segment.batch_id or ""
        unit_id = segment_unit_id(segment.job_id, segment.segment_id)
        script_keys = [
            keys.job_key(segment.job_id),
            keys.job_segments_key(segment.job_id),
            keys.batch_key(batch_id),
            keys.batch_records_key(batch_id),
            keys.job_batches_key(segment.job_id),
            keys.unit_key(unit_id),
            keys.watchdog_key(),
            keys.job_progress_key(segment.job_id),
            keys.stats_key(),
        ]
        counters = fields.segment_counters(
            received=segment.received,
            rejected=segment.rejected,
            duplicates=segment.duplicates,
            failed=segment.failed,
            has_batch=bool(batch_id),
            cached_enriched=segment.enriched,
            cached_not_found=segment.not_found,
        )
        watched = [batch_member(batch_id)] if batch_id else []
        if segment.outcomes:
            watched += [delivery_member(unit_id, name) for name in destinations]
        args: list[str | int] = [
            segment.segment_id,
            batch_id,
            json.dumps(segment.records, separators=(",", ":"), ensure_ascii=False) if batch_id else "",
            len(segment.records),
            segment.received,
            segment.rejected,
            segment.duplicates,
            json.dumps(segment.outcomes, separators=(",", ":"), ensure_ascii=False) if segment.outcomes else "",
            len(destinations),
            self._ttl_s,
            segment.job_id,
            segment.part_id,
            segment.end,
            self._watchdog.deadline(now_ms),
            segment.failed,
            fields.encode(counters),
            now_ms,
            segment.enriched,
            segment.not_found,
            segment.credits_saved,
            segment.lane,
            *watched,
        ]
        return int(self._commit(keys=script_keys, args=args)) == 1

    def get(self, batch_id: str) -> Batch | None:
        """The batch, or None when it does not exist."""
        raw: dict[str, str] = self._redis.hgetall(keys.batch_key(batch_id))  # type: ignore[assignment]
        return _batch_of(batch_id, raw)

    def states_of(self, batch_ids: Sequence[str]) -> list[tuple[BatchState, str, int] | None]:
        """Each batch's state, job and ``created_ms`` (None for those gone), in one round trip of three fields each."""
        pipe = self._redis.pipeline(transaction=False)
        for batch_id in batch_ids:
            pipe.hmget(keys.batch_key(batch_id), ["state", "job_id", "created_ms"])
        found: list[tuple[BatchState, str, int] | None] = []
        for state, job_id, created_ms in pipe.execute():
            is_known = state in _STATE_NAMES and job_id is not None
            found.append((BatchState(state), str(job_id), int(created_ms or 0)) if is_known else None)
        return found

    def keys_of(self, batch_id: str) -> list[str]:
        """The keys a batch lives in (renewed together)."""
        return [keys.batch_key(batch_id), keys.batch_records_key(batch_id), keys.batch_results_key(batch_id)]

    def records(self, batch_id: str) -> list[dict[str, Any]]:
        """The records of the batch as they are sent to the API."""
        raw = self._redis.get(keys.batch_records_key(batch_id))
        return list(json.loads(str(raw))) if raw else []

    def records_of(self, batch_ids: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The records of each batch, in one round trip (empty for a batch gone)."""
        raw = self._redis.mget([keys.batch_records_key(batch_id) for batch_id in batch_ids]) if batch_ids else []
        return [list(json.loads(str(text))) if text else [] for text in raw]

    def transition(
        self,
        batch_id: str,
        allowed: tuple[BatchState, ...],
        *,
        seq: int | None = None,
        to: BatchState | None = None,
        bump: bool = False,
        **fields: str | int,
    ) -> int:
        """Compare-and-set the batch's state; returns the new seq.

        Raises:
            TransitionRefused: the state is not one of ``allowed`` or ``seq`` is stale.
        """
        args: list[str | int] = [
            ",".join(allowed),
            "" if seq is None else seq,
            to or "",
            "1" if bump else "0",
            self._ttl_s,
        ]
        for name, value in fields.items():
            args += [name, value]
        result = int(self._transition(keys=self.keys_of(batch_id), args=args))
        if result < 0:
            raise TransitionRefused(batch_id, result)
        return result

    def claim(self, batch_id: str, seq: int, now_ms: int, lease_until_ms: int) -> Claim:
        """Take the batch for its POST (``pending``/``posting`` -> ``posting`` with a lease).

        Returns:
            The batch's seq, and whether this POST may repeat an earlier one (in doubt).

        Raises:
            TransitionRefused: missing, not postable, stale seq, or leased to another worker.
        """
        script_keys = [keys.batch_key(batch_id), keys.batch_records_key(batch_id)]
        code, in_doubt = self._claim(keys=script_keys, args=[seq, now_ms, lease_until_ms, self._ttl_s])
        if int(code) < 0:
            raise TransitionRefused(batch_id, int(code))
        return Claim(int(code), bool(int(in_doubt)))

    def fetch(
        self,
        batch_id: str,
        results: list[dict[str, Any]],
        *,
        partial: bool,
        now_ms: int,
        via: str = fields.FETCHED_BY_GET,
        carrier: Batch | None = None,
    ) -> bool:
        """Keep the API's results and move the batch to ``fetched``, once; False when it had moved on.

        ``via`` says how they came (``fields.FETCHED_BY_GET`` or ``FETCHED_BY_PUSH``), for the metrics.
        With ``carrier``, the batch is one it carries: it must be ``carried``, takes the request's id,
        times and looks, and is watched again (its sink is its own from now on).
        """
        text = json.dumps(results, separators=(",", ":"), ensure_ascii=False)
        script_keys = [keys.batch_key(batch_id), keys.batch_results_key(batch_id), keys.batch_records_key(batch_id)]
        args: list[str | int] = [text, "1" if partial else "0", now_ms, self._ttl_s, via]
        if carrier is not None:
            script_keys.append(keys.watchdog_key())
            args += [BatchState.CARRIED, batch_member(batch_id), self._watchdog.deadline(now_ms)]
            args += ["request_id", carrier.request_id, "submitted_ms", carrier.submitted_ms]
            args += ["looked_ms", carrier.looked_ms, "polls", carrier.polls]
        return bool(self._fetch(keys=script_keys, args=args))

    def results(self, batch_id: str) -> list[dict[str, Any]] | None:
        """The stored results, or None when there are none."""
        raw = self._redis.get(keys.batch_results_key(batch_id))
        return list(json.loads(str(raw))) if raw else None

    def complete(
        self,
        batch: Batch,
        allowed: tuple[BatchState, ...],
        final: BatchState,
        *,
        enriched: int,
        not_found: int,
        failed: int,
        outcomes: list[dict[str, Any]],
        destinations: Sequence[str],
        now_ms: int,
        reason: str = "",
        credits_used: int = 0,
    ) -> bool:
        """Close the batch and count its records once, handing its watch to its deliveries.

        Returns:
            False when it was closed before (or its job is gone).
        """
        unit_id = batch_unit_id(batch.batch_id)
        script_keys = [
            keys.batch_key(batch.batch_id),
            keys.job_key(batch.job_id),
            keys.unit_key(unit_id),
            keys.watchdog_key(),
            keys.stats_key(),
        ]
        gets, delay_s = _gets_and_delay(batch, final, now_ms)
        counters = fields.close_counters(
            final=final, enriched=enriched, not_found=not_found, failed=failed, gets=gets, delay_s=delay_s
        )
        args: list[str | int] = [
            ",".join(allowed),
            final,
            enriched,
            not_found,
            failed,
            json.dumps(outcomes, separators=(",", ":"), ensure_ascii=False),
            len(destinations),
            self._ttl_s,
            reason,
            credits_used,
            batch_member(batch.batch_id),
            self._watchdog.deadline(now_ms),
            fields.encode(counters),
            *(delivery_member(unit_id, name) for name in destinations),
        ]
        applied = bool(self._complete(keys=script_keys, args=args))
        if applied:
            # The bulk data now lives in the unit until every destination has it.
            self._redis.delete(keys.batch_records_key(batch.batch_id), keys.batch_results_key(batch.batch_id))
        return applied

    def forget(self, batch_id: str) -> None:
        """A closed shared request: its records, results and watch go (its batches hold their own)."""
        self._redis.delete(keys.batch_records_key(batch_id), keys.batch_results_key(batch_id))
        self._watchdog.disarm(batch_member(batch_id))

    def split(
        self, batch: Batch, seq: int, first: list[dict[str, Any]], second: list[dict[str, Any]], now_ms: int
    ) -> bool:
        """Replace a refused batch by its two halves (``{id}.0`` and ``{id}.1``); False when stale."""
        ids = (f"{batch.batch_id}.0", f"{batch.batch_id}.1")
        script_keys = [
            keys.batch_key(batch.batch_id),
            keys.job_key(batch.job_id),
            keys.job_batches_key(batch.job_id),
            keys.batch_key(ids[0]),
            keys.batch_records_key(ids[0]),
            keys.batch_key(ids[1]),
            keys.batch_records_key(ids[1]),
            keys.watchdog_key(),
            keys.stats_key(),
        ]
        args: list[str | int] = [seq, batch.job_id]
        for batch_id, records in zip(ids, (first, second), strict=True):
            args += [json.dumps(records, separators=(",", ":"), ensure_ascii=False), len(records), batch_id]
        args += [self._ttl_s, self._watchdog.deadline(now_ms), batch_member(batch.batch_id)]
        args += [batch_member(batch_id) for batch_id in ids]
        args.append(fields.encode({fields.batch_field("split"): 1, fields.batch_field("created"): 2}))
        applied = bool(self._split(keys=script_keys, args=args))
        if applied:
            self._redis.delete(keys.batch_records_key(batch.batch_id))
        return applied


def _gets_and_delay(batch: Batch, final: str, now_ms: int) -> tuple[int | None, float | None]:
    """The GETs that answered for a batch closed with results, and its ready-to-delivered delay when known.

    GETs: its "not ready" looks, plus the one that brought the results when they did not come by a push.
    """
    if final != BatchState.DONE or not batch.fetched_ms:
        return None, None
    gets = batch.polls + (1 if batch.fetched_via == fields.FETCHED_BY_GET else 0)
    delay_s = fields.ready_to_delivered_s(
        submitted_ms=batch.submitted_ms,
        looked_ms=batch.looked_ms,
        fetched_ms=batch.fetched_ms,
        fetched_via=batch.fetched_via,
        partial=batch.partial,
        now_ms=now_ms,
    )
    return gets, delay_s


def _batch_of(batch_id: str, raw: dict[str, str]) -> Batch | None:
    if not raw or "job_id" not in raw or raw.get("state") not in _STATE_NAMES:
        # Gone, or a fragment no script of this version writes: nothing to act on.
        return None
    return Batch(
        batch_id=batch_id,
        job_id=raw["job_id"],
        state=BatchState(raw["state"]),
        seq=int(raw.get("seq", 0)),
        count=int(raw.get("count", 0)),
        request_id=raw.get("request_id", ""),
        submitted_ms=int(raw.get("submitted_ms", 0)),
        lease_until_ms=int(raw.get("lease_until_ms", 0)),
        polls=int(raw.get("polls", 0)),
        looked_ms=int(raw.get("looked_ms", 0)),
        errors=int(raw.get("errors", 0)),
        callback_token=raw.get("callback_token", ""),
        reason=raw.get("reason", ""),
        partial=raw.get("partial") == "1",
        in_doubt=raw.get("in_doubt") == "1",
        doubt_ms=int(raw.get("doubt_ms", 0)),
        created_ms=int(raw.get("created_ms", 0)),
        fetched_ms=int(raw.get("fetched_ms", 0)),
        fetched_via=raw.get("fetched_via", ""),
        lane=raw.get("lane") or gcra.BULK_LANE,
        members=tuple(raw["members"].split(",")) if raw.get("members") else (),
        siren=raw.get("siren") == "1",
        language=raw.get("language") or None,
        carrier=raw.get("carrier", ""),
        solo=raw.get("solo") == "1",
    )


def is_shared(batch_id: str) -> bool:
    """Whether ``batch_id`` names a shared request."""
    return batch_id.startswith(SHARED_PREFIX)
