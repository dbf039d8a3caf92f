"""The job ledger: one Redis hash per job with its counters, state and timestamps.

The counters are moved only by the Lua scripts of this package, each once per
segment, batch or delivery, so a redelivered task never counts twice. For a
finished job: received = delivered + rejected + duplicates + failed, with
delivered = enriched + not_found.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

import redis

from dropq.workers import keys
from dropq.workers.jobs import seen
from dropq.workers.jobs.options import JobOptions, JobOptionsError
from dropq.workers.jobs.scripts import load_script
from dropq.workers.metrics.fields import JOBS_FINISHED

__all__ = ["JobLedger", "JobStatus", "JobFinishedError", "PartVerdict", "FINISHED_BULK_TTL_S"]

# The bookkeeping of a finished job keeps this long before Redis drops it; the ledger and the
# parts set (the tombstone that recognises a resend) keep the job's TTL.
FINISHED_BULK_TTL_S = 3600


class JobFinishedError(JobOptionsError):
    """New contacts for a job that is finished: its outputs are written, so the call is refused."""

    @classmethod
    def for_job(cls, job_id: str) -> JobFinishedError:
        """The error for new contacts sent to the finished job ``job_id``."""
        return cls(
            "job_id",
            job_id,
            "a job that is still running (this one is finished: send new contacts under a new job_id; "
            "a resend of a part it already received is accepted and changes nothing)",
        )


class PartVerdict(IntEnum):
    """What ``register_part`` found."""

    REFUSED = -1  # new, but the job is finished
    SEEN = 0  # received before, not produced yet: produce it (again)
    NEW = 1
    PRODUCED = 2  # received and produced before: nothing to do


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A snapshot of a job's ledger."""

    job_id: str
    state: str = "running"
    received: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    batches_submitted: int = 0
    batches_done: int = 0
    delivered: int = 0
    enriched: int = 0
    not_found: int = 0
    failed: int = 0
    credits_used: int = 0
    cached: int = 0
    credits_saved: int = 0
    resubmitted: int = 0
    deliveries_pending: int = 0
    deliveries_failed: int = 0
    parts_pending: int = 0
    parked: int = 0
    final_seen: int = 0
    input_end: int = 0
    created_ms: int = 0
    finishing_ms: int = 0
    finished_ms: int = 0
    fatal_reason: str = ""
    options: str = ""

    @property
    def is_finished(self) -> bool:
        """Whether the job's completion has been announced."""
        return self.state == "finished"

    @property
    def accounted(self) -> int:
        """Records with a final outcome: delivered, rejected, duplicate or failed."""
        return self.delivered + self.rejected + self.duplicates + self.failed

    def summary(self) -> dict[str, Any]:
        """The counts as a JSON-ready mapping (what ``callback.on_done`` receives)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("options", "finishing_ms")}


# The counters whose sum is JobStatus.accounted.
_ACCOUNTED = ("delivered", "rejected", "duplicates", "failed")
_INT_FIELDS = {f.name for f in fields(JobStatus) if f.type == "int"}
# The job hash's field holding the first reason records failed for, and how much of it is kept.
_FIRST_FAILURE = "first_failure"
_MAX_REASON_CHARS = 300


class JobLedger:
    """Reads and writes job ledgers.

    Args:
        client: a Redis client (``decode_responses=True``).
        ttl_s: how long a job's keys live after their last write.
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s
        self._register_part = load_script(client, "register_part")
        self._part_produced = load_script(client, "part_produced")
        self._finish = load_script(client, "finish_job")

    def open(self, job_id: str, options: JobOptions, now_ms: int) -> bool:
        """Create the job if it is new. The same ``job_id`` twice is one job; the first options win.

        Returns:
            True when the job was created by this call.
        """
        key = keys.job_key(job_id)
        # One transaction: a crash can't leave a job created without its options.
        pipe = self._redis.pipeline(transaction=True)
        pipe.hsetnx(key, "created_ms", now_ms)
        pipe.hsetnx(key, "state", "running")
        pipe.hsetnx(key, "options", options.to_json())
        # The secret part of the job's correlation ids (see ``produce.correlation_id_for``).
        pipe.hsetnx(key, "ref_secret", secrets.token_hex(6))
        pipe.expire(key, self._ttl_s)
        pipe.zadd(keys.jobs_index_key(), {job_id: now_ms}, nx=True)
        return bool(pipe.execute()[0])

    def ref_secret(self, job_id: str) -> str:
        """The secret part of the job's correlation ids ("" for a job opened before it existed)."""
        return str(self._redis.hget(keys.job_key(job_id), "ref_secret") or "")

    def options(self, job_id: str) -> JobOptions:
        """The options the job was opened with."""
        raw = self._redis.hget(keys.job_key(job_id), "options")
        return JobOptions.from_json(str(raw)) if raw else JobOptions()

    def register_part(self, job_id: str, part_id: str, *, final: bool, end: int = 0) -> PartVerdict:
        """Count an input part once, and say whether it still needs producing.

        Args:
            job_id: the job.
            part_id: the part (its offset).
            final: whether this part completes the input.
            end: the part's offset plus its records; with the final part, the job's input size.
        """
        args = [part_id, "1" if final else "0", self._ttl_s, end]
        script_keys = [keys.job_key(job_id), keys.job_parts_key(job_id), keys.job_produced_parts_key(job_id)]
        return PartVerdict(int(self._register_part(keys=script_keys, args=args)))

    def mark_part_produced(self, job_id: str, part_id: str, start: int, end: int) -> bool:
        """Note once that the records ``start`` to ``end`` (excluded) of the job's input are produced."""
        job_keys = [keys.job_key(job_id), keys.job_produced_parts_key(job_id), keys.job_progress_key(job_id)]
        return bool(self._part_produced(keys=job_keys, args=[f"{start}:{end}", start, self._ttl_s, part_id]))

    def committed_through(self, job_id: str, part_id: str, offset: int) -> int:
        """The first input index of a part that no committed segment covers yet."""
        raw = self._redis.hget(keys.job_progress_key(job_id), part_id)
        return int(str(raw)) if raw is not None else offset

    def produced_through(self, job_id: str) -> int:
        """The first input index not yet produced, counting only the unbroken run of parts from index 0."""
        covered = 0
        # Members come ordered by their score, the range's start.
        for member in self._redis.zrange(keys.job_produced_parts_key(job_id), 0, -1):
            bounds = str(member).split(":")
            start, end = int(bounds[0]), int(bounds[1])
            if start > covered:
                break
            covered = max(covered, end)
        return covered

    def add(self, job_id: str, **counters: int) -> None:
        """Increment counters that are not tied to a state transition (credits used, resubmits)."""
        pipe = self._redis.pipeline(transaction=True)
        for name, amount in counters.items():
            pipe.hincrby(keys.job_key(job_id), name, amount)
        pipe.expire(keys.job_key(job_id), self._ttl_s)
        pipe.execute()

    def set_fatal(self, job_id: str, reason: str) -> None:
        """Remember a reason that fails every remaining batch of the job (a wrong token); never recreates a job."""
        if self._redis.exists(keys.job_key(job_id)):
            self._redis.hsetnx(keys.job_key(job_id), "fatal_reason", reason)

    def note_failure(self, job_id: str, reason: str) -> None:
        """Keep the reason of the job's first failed records (named by its finish warning); never recreates a job."""
        if self._redis.exists(keys.job_key(job_id)):
            self._redis.hsetnx(keys.job_key(job_id), _FIRST_FAILURE, reason[:_MAX_REASON_CHARS])

    def first_failure(self, job_id: str) -> str | None:
        """The reason kept by ``note_failure``, if any record of the job failed."""
        reason = self._redis.hget(keys.job_key(job_id), _FIRST_FAILURE)
        return reason.decode() if isinstance(reason, bytes) else reason  # type: ignore[return-value]

    def renew(self, job_id: str) -> None:
        """Renew the TTL of a running job's own keys once it falls below half (a job paused for days keeps them)."""
        # Read on the parts set: every message renews the ledger, but none renews the job's own sets.
        if self._redis.ttl(keys.job_parts_key(job_id)) > self._ttl_s // 2:
            return
        pipe = self._redis.pipeline(transaction=False)
        for key in (*_job_keys(job_id), *seen.bucket_keys(self._redis, job_id)):
            pipe.expire(key, self._ttl_s)
        pipe.execute()

    def read(self, job_id: str) -> JobStatus | None:
        """The job's ledger, or None when there is no such job (or it expired)."""
        raw: dict[str, str] = self._redis.hgetall(keys.job_key(job_id))  # type: ignore[assignment]
        return _status_of(job_id, raw)

    def running_jobs(self) -> list[str]:
        """Ids of the jobs not finished yet; ids whose ledger has expired are dropped from the index."""
        members = [str(m) for m in self._redis.zrange(keys.jobs_index_key(), 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for job_id in members:
            pipe.hget(keys.job_key(job_id), "state")
        running: list[str] = []
        for job_id, state in zip(members, pipe.execute(), strict=True):
            if state in ("running", "finishing"):
                running.append(job_id)
            else:
                # Expired, or finished (a resend after the finish re-adds it): not running.
                self._redis.zrem(keys.jobs_index_key(), job_id)
        return running

    def waiting_contacts(self) -> int:
        """Contacts received by the running jobs and without a final outcome yet, parked parts' included: what
        Redis holds for them.

        Two round trips whatever the number of jobs (the index, then every ledger's counters pipelined).
        """
        members = [str(m) for m in self._redis.zrange(keys.jobs_index_key(), 0, -1)]
        pipe = self._redis.pipeline(transaction=False)
        for job_id in members:
            pipe.hmget(keys.job_key(job_id), "state", "parked", "received", *_ACCOUNTED)
        waiting = 0
        for state, parked, received, *done in pipe.execute():
            if state in ("running", "finishing"):
                waiting += max(0, int(parked or 0)) + max(0, int(received or 0) - sum(int(n or 0) for n in done))
        return waiting

    def read_many(self, job_ids: list[str]) -> list[JobStatus | None]:
        """The ledgers of these jobs (None for those gone), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(keys.job_key(job_id))
        return [_status_of(job_id, raw) for job_id, raw in zip(job_ids, pipe.execute(), strict=True)]

    def batch_ids(self, job_id: str) -> list[str]:
        """Every batch of the job (halves of split batches included)."""
        return sorted(str(b) for b in self._redis.smembers(keys.job_batches_key(job_id)))  # type: ignore[union-attr]

    def needs_finisher(self, job_id: str, now_ms: int, silent_ms: int) -> bool:
        """Whether a ``dropq.finish`` should be sent: the job looks complete, or its finisher went silent."""
        status = self.read(job_id)
        if status is not None and status.state == "finishing":
            return now_ms - status.finishing_ms > silent_ms
        return self.is_ready_to_finish(job_id, status)

    def is_ready_to_finish(self, job_id: str, status: JobStatus | None = None) -> bool:
        """Whether the job looks complete (a cheap check before enqueueing ``dropq.finish``)."""
        status = status or self.read(job_id)
        return bool(
            status
            and status.state == "running"
            and status.final_seen
            and status.parts_pending == 0
            and status.received >= status.input_end
            and status.batches == status.batches_done
            and status.deliveries_pending == 0
        )

    def begin_finish(self, job_id: str, finisher: str, now_ms: int, stale_ms: int) -> bool:
        """Claim the job's completion; True for the one finisher (again on its redelivery).

        A finisher silent for longer than ``stale_ms`` (killed) is replaced.
        """
        return bool(self._finish(keys=[keys.job_key(job_id)], args=[now_ms, finisher, "begin", stale_ms]))

    def heartbeat_finish(self, job_id: str, finisher: str, now_ms: int) -> bool:
        """Say the finisher still works (between destinations); False when another one took over."""
        return bool(self._finish(keys=[keys.job_key(job_id)], args=[now_ms, finisher, "heartbeat", 0]))

    def release_finish(self, job_id: str, finisher: str, now_ms: int) -> bool:
        """Hand the job back (finishing -> running) after the finisher failed, for the next finish check."""
        return bool(self._finish(keys=[keys.job_key(job_id)], args=[now_ms, finisher, "release", 0]))

    def end_finish(self, job_id: str, finisher: str, now_ms: int) -> bool:
        """Mark the job finished once its completion was announced."""
        if not self._finish(
            keys=[keys.job_key(job_id), keys.stats_key()], args=[now_ms, finisher, "end", 0, JOBS_FINISHED]
        ):
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(keys.jobs_index_key(), job_id)
        # The tombstone: the ledger and the parts set live the full TTL from now, so a resend is recognised.
        pipe.expire(keys.job_key(job_id), self._ttl_s)
        pipe.expire(keys.job_parts_key(job_id), self._ttl_s)
        # The rest of the bookkeeping is no longer needed.
        for key in _job_keys(job_id):
            if key not in (keys.job_key(job_id), keys.job_parts_key(job_id), keys.job_seen_key(job_id)):
                pipe.expire(key, min(FINISHED_BULK_TTL_S, self._ttl_s))
        pipe.execute()
        # The digests (a few bytes per contact) go now: a finished job takes no new contact to compare.
        seen.forget(self._redis, job_id)
        return True


def _status_of(job_id: str, raw: dict[str, str]) -> JobStatus | None:
    if not raw:
        return None
    values: dict[str, Any] = {"job_id": job_id}
    for name, value in raw.items():
        if name in _INT_FIELDS:
            values[name] = int(value)
        elif name in ("state", "fatal_reason", "options"):
            values[name] = value
    return JobStatus(**values)


def _job_keys(job_id: str) -> tuple[str, ...]:
    """The keys a job owns itself (its batches and units have their own)."""
    return (
        keys.job_key(job_id),
        keys.job_parts_key(job_id),
        keys.job_produced_parts_key(job_id),
        keys.job_parked_parts_key(job_id),
        keys.job_progress_key(job_id),
        keys.job_segments_key(job_id),
        keys.job_seen_key(job_id),
        keys.job_batches_key(job_id),
        keys.job_deliveries_key(job_id),
    )
