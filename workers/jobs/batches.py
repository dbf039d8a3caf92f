"""The batch store in Redis: creates batches and moves them through their states (``jobs.batch``).

Every write is one script (``commit_segment``, ``transition``, ``claim``, ``fetch``,
``complete_batch``, ``split_batch``), and every script that writes a batch also keeps its watch
(``jobs.watchdog``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from dropq.dropcontact import json_codec
from dropq.workers import keys
from dropq.workers.jobs.batch import (
    STATE_NAMES,
    Batch,
    BatchState,
    Claim,
    SegmentCommit,
    TransitionRefused,
    batch_of,
)
from dropq.workers.jobs.outcomes import batch_unit_id, segment_unit_id
from dropq.workers.jobs.scripts import load_script
from dropq.workers.jobs.watchdog import Watchdog, batch_member, delivery_member
from dropq.workers.metrics import fields

__all__ = ["BatchStore"]


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
            json_codec.dumps(segment.records) if batch_id else "",
            len(segment.records),
            segment.received,
            segment.rejected,
            segment.duplicates,
            json_codec.dumps(segment.outcomes) if segment.outcomes else "",
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
        return batch_of(batch_id, raw)

    def states_of(self, batch_ids: Sequence[str]) -> list[tuple[BatchState, str, int] | None]:
        """Each batch's state, job and ``created_ms`` (None for those gone), in one round trip of three fields each."""
        pipe = self._redis.pipeline(transaction=False)
        for batch_id in batch_ids:
            pipe.hmget(keys.batch_key(batch_id), ["state", "job_id", "created_ms"])
        found: list[tuple[BatchState, str, int] | None] = []
        for state, job_id, created_ms in pipe.execute():
            is_known = state in STATE_NAMES and job_id is not None
            found.append((BatchState(state), str(job_id), int(created_ms or 0)) if is_known else None)
        return found

    def keys_of(self, batch_id: str) -> list[str]:
        """The keys a batch lives in (renewed together)."""
        return [keys.batch_key(batch_id), keys.batch_records_key(batch_id), keys.batch_results_key(batch_id)]

    def records(self, batch_id: str) -> list[dict[str, Any]]:
        """The records of the batch as they are sent to the API."""
        raw = self._redis.get(keys.batch_records_key(batch_id))
        return list(json_codec.loads(raw)) if raw else []

    def records_of(self, batch_ids: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The records of each batch, in one round trip (empty for a batch gone)."""
        raw = self._redis.mget([keys.batch_records_key(batch_id) for batch_id in batch_ids]) if batch_ids else []
        return [list(json_codec.loads(text)) if text else [] for text in raw]

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
        text = json_codec.dumps(results)
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
        return list(json_codec.loads(raw)) if raw else None

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
            json_codec.dumps(outcomes),
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
            args += [json_codec.dumps(records), len(records), batch_id]
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
