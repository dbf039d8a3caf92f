"""The soak's one invariant checker: what a finished schedule must show, whatever faults it went through.

Pure: ``check_schedule`` takes what ``observe.py`` read from the real parts
and returns the violations, each naming its schedule's seed, the invariant,
the job and the numbers. No contact data ever goes into a violation: only
indexes, counts and key names.

The invariants (``INVARIANTS``, in the order they are checked):

- ``job_finished``: every job reaches ``finished`` before the schedule's deadline;
- ``accounting``: received == delivered + rejected + duplicates + failed,
  delivered == enriched + not_found, and received == the rows sent;
- ``outcomes_match_ledger``: the statuses in the job's file count what the ledger counts;
- ``nothing_failed``: no record failed and no delivery gave up (no fault of the
  soak lasts long enough to exhaust the workers' retries);
- ``finished_job_unchanged``: resending a finished job, or a part of it, changes none of its counters;
- ``jsonl_exactly_once`` / ``stream_exactly_once``: the idempotent destinations
  hold each input row once (the file in input order);
- ``http_at_least_once`` / ``callback_at_least_once``: the at-least-once
  destinations got each row at least once; ``callback_on_done``: the job's
  ``on_done`` came at least once;
- ``posted_twice_counted``: batches the sandbox received twice (same records,
  same correlation ids) are at most the jobs' ``resubmitted``;
- ``every_record_posted``: the distinct records the sandbox received are the jobs' records to send
  (received less rejected, duplicates and cache answers; fewer only when records failed). Counted
  in records, not batches: a shared request carries several jobs' batches in one POST;
- ``keys_have_ttl``: no ``dropq:*`` key without a TTL but those of ``ALLOWED_PERSISTENT_KEYS``;
- ``workers_survive``: no worker (or webhook receiver) exited that the schedule did not kill;
- ``calls_succeed``: every ``dropq.enrich`` call, resent ones included, was answered without an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from dropq.workers.jobs.ledger import JobStatus

__all__ = [
    "ALLOWED_PERSISTENT_KEYS",
    "INVARIANTS",
    "JobObservation",
    "ScheduleObservation",
    "Violation",
    "check_schedule",
    "describe_indexes",
]

# Keys that may live without a TTL. The README's "Cleanup" names one: the index of running jobs,
# cleaned by the sweep. Everything else dropq writes must expire.
# The running-jobs index, the watchdog, and the metrics' counters and heartbeats (workers.keys says why).
ALLOWED_PERSISTENT_KEYS = frozenset({"dropq:jobs", "dropq:watchdog", "dropq:stats", "dropq:workers"})
# The metrics' request counters, one per account.
_ALLOWED_PERSISTENT_PREFIXES = ("dropq:api-calls:",)

INVARIANTS = (
    "job_finished",
    "accounting",
    "outcomes_match_ledger",
    "nothing_failed",
    "finished_job_unchanged",
    "jsonl_exactly_once",
    "stream_exactly_once",
    "http_at_least_once",
    "callback_at_least_once",
    "callback_on_done",
    "posted_twice_counted",
    "every_record_posted",
    "keys_have_ttl",
    "workers_survive",
    "calls_succeed",
)

# Ledger fields a resend after the finish must leave alone: all of them.
_FROZEN_FIELDS = tuple(f.name for f in fields(JobStatus) if f.name not in ("job_id", "options"))
# How many indexes or keys a violation shows at most.
_SHOWN = 8


@dataclass(frozen=True, slots=True)
class JobObservation:
    """What one job left behind.

    Args:
        job_id: the job.
        records: rows sent (the job's input size).
        status: the ledger at the end, None when there is none.
        finished_status: the ledger when the job was first seen finished (before resends after the finish).
        jsonl_indexes: the ``index`` of each line of the job's file, in file order; None when there is no file.
        jsonl_statuses: how many lines of the file have each ``status``.
        stream_indexes: the ``index`` of each entry of the job's stream.
        http_counts: index -> POSTs that carried it; None when the job has no http destination.
        callback_counts: index -> callback messages that carried it; None when the job has no callback.
        on_done: ``on_done`` messages received; None when the job has no callback.
    """

    job_id: str
    records: int
    status: JobStatus | None
    finished_status: JobStatus | None = None
    jsonl_indexes: tuple[int, ...] | None = None
    jsonl_statuses: Mapping[str, int] = field(default_factory=dict)
    stream_indexes: tuple[int, ...] = ()
    http_counts: Mapping[int, int] | None = None
    callback_counts: Mapping[int, int] | None = None
    on_done: int | None = None


@dataclass(frozen=True, slots=True)
class ScheduleObservation:
    """What a whole schedule left behind.

    Args:
        seed: the schedule's seed.
        jobs: one observation per job.
        sandbox: the sandbox's stats (``/_sandbox/stats``).
        keys_without_ttl: every ``dropq:*`` key whose TTL is -1.
        unexpected_exits: processes that exited without being killed, as short descriptions.
        failed_calls: ``dropq.enrich`` calls whose task failed, as ``task id: exception class``.
        timed_out_after_s: the deadline that passed with jobs unfinished, or None.
    """

    seed: int
    jobs: tuple[JobObservation, ...]
    sandbox: Mapping[str, Any]
    keys_without_ttl: tuple[str, ...] = ()
    unexpected_exits: tuple[str, ...] = ()
    failed_calls: tuple[str, ...] = ()
    timed_out_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    """One invariant broken by one schedule (and job, when it is about a job)."""

    seed: int
    invariant: str
    detail: str
    job_id: str | None = None

    def __str__(self) -> str:
        where = f" job {self.job_id}" if self.job_id else ""
        return f"seed {self.seed}{where}: {self.invariant}: {self.detail}"


def describe_indexes(indexes: Iterable[int], n: int, *, ordered: bool) -> str | None:
    """What is wrong with a list of row indexes that should be ``range(n)`` once each, or None.

    Args:
        indexes: the indexes found, in the order found.
        n: the rows of the job.
        ordered: whether the order matters too.
    """
    found = list(indexes)
    counts = Counter(found)
    missing = [i for i in range(n) if i not in counts]
    twice = sorted(i for i, c in counts.items() if c > 1)
    foreign = sorted(i for i in counts if not 0 <= i < n)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (first {missing[:_SHOWN]})")
    if twice:
        extra = sum(counts[i] - 1 for i in twice)
        problems.append(f"{len(twice)} rows more than once, {extra} extra copies (first {twice[:_SHOWN]})")
    if foreign:
        problems.append(f"{len(foreign)} indexes outside 0..{n - 1} (first {foreign[:_SHOWN]})")
    if not problems and ordered and found != sorted(found):
        first = next(k for k in range(1, len(found)) if found[k] < found[k - 1])
        problems.append(f"out of input order at line {first}")
    return "; ".join(problems) or None


def _missing_at_least_once(counts: Mapping[int, int], n: int) -> str | None:
    missing = [i for i in range(n) if counts.get(i, 0) < 1]
    if not missing:
        return None
    return f"{len(missing)} of {n} rows never received (first {missing[:_SHOWN]})"


def _check_job(seed: int, job: JobObservation, *, timed_out: bool) -> list[Violation]:
    found: list[Violation] = []

    def add(invariant: str, detail: str) -> None:
        found.append(Violation(seed, invariant, detail, job.job_id))

    status = job.status
    if status is None:
        add("job_finished", "no ledger at all")
        return found
    if not status.is_finished:
        add(
            "job_finished",
            f"state {status.state!r}{' at the deadline' if timed_out else ''}: received {status.received}/"
            f"{job.records}, batches done {status.batches_done}/{status.batches}, deliveries pending "
            f"{status.deliveries_pending}, parts pending {status.parts_pending}, final seen {status.final_seen}",
        )
    total = status.delivered + status.rejected + status.duplicates + status.failed
    problems = []
    if status.received != total:
        problems.append(
            f"received {status.received} != delivered {status.delivered} + rejected {status.rejected} + "
            f"duplicates {status.duplicates} + failed {status.failed} (= {total})"
        )
    if status.delivered != status.enriched + status.not_found:
        problems.append(f"delivered {status.delivered} != enriched {status.enriched} + not_found {status.not_found}")
    if status.received != job.records:
        problems.append(f"received {status.received} != {job.records} rows sent")
    if problems:
        add("accounting", "; ".join(problems))
    if status.failed or status.deliveries_failed:
        add("nothing_failed", f"failed {status.failed}, deliveries_failed {status.deliveries_failed}")
    before = job.finished_status
    if before is not None:
        changed = [
            f"{name} {getattr(before, name)!r} -> {getattr(status, name)!r}"
            for name in _FROZEN_FIELDS
            if getattr(before, name) != getattr(status, name)
        ]
        if changed:
            add("finished_job_unchanged", "; ".join(changed))
    if not status.is_finished:
        # The destinations below are only complete once the job is; its unfinished state is the violation.
        return found
    if job.jsonl_indexes is None:
        add("jsonl_exactly_once", "the job's file is missing")
    else:
        problem = describe_indexes(job.jsonl_indexes, job.records, ordered=True)
        if problem:
            add("jsonl_exactly_once", problem)
        expected = {
            "enriched": status.enriched,
            "not_found": status.not_found,
            "rejected": status.rejected,
            "duplicate": status.duplicates,
            "failed": status.failed,
        }
        actual = {name: job.jsonl_statuses.get(name, 0) for name in expected}
        others = {name: count for name, count in job.jsonl_statuses.items() if name not in expected}
        if actual != expected or others:
            add("outcomes_match_ledger", f"file {actual}{f' and {others}' if others else ''}, ledger {expected}")
    problem = describe_indexes(job.stream_indexes, job.records, ordered=False)
    if problem:
        add("stream_exactly_once", problem)
    if job.http_counts is not None and (problem := _missing_at_least_once(job.http_counts, job.records)):
        add("http_at_least_once", problem)
    if job.callback_counts is not None and (problem := _missing_at_least_once(job.callback_counts, job.records)):
        add("callback_at_least_once", problem)
    if job.on_done is not None and job.on_done < 1:
        add("callback_on_done", "no on_done message")
    return found


def _check_posts(seed: int, jobs: Sequence[JobObservation], stats: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    statuses = [job.status for job in jobs if job.status is not None]
    resubmitted = sum(s.resubmitted for s in statuses)
    failed = sum(s.failed for s in statuses)
    posted_twice = int(stats.get("duplicate_batches_posted", 0))
    received = int(stats.get("batches_received", 0))
    if posted_twice > resubmitted:
        found.append(
            Violation(
                seed,
                "posted_twice_counted",
                f"the sandbox received {posted_twice} batches a second time (of {received} batches, "
                f"{stats.get('duplicate_records_posted', 0)} records again); the ledgers count "
                f"{resubmitted} resubmitted",
            )
        )
    to_send = sum(s.received - s.rejected - s.duplicates - s.cached for s in statuses)
    distinct = int(stats.get("records_received", 0)) - int(stats.get("duplicate_records_posted", 0))
    # A record that failed for good may never have been accepted; otherwise each record reaches the API once.
    if distinct > to_send or (not failed and distinct != to_send):
        found.append(
            Violation(seed, "every_record_posted", f"{distinct} distinct records received, the ledgers send {to_send}")
        )
    return found


def check_schedule(observation: ScheduleObservation) -> list[Violation]:
    """Check every invariant over one schedule's outcome.

    Returns:
        The violations, in the order of ``INVARIANTS`` within each job, then the schedule-wide ones.
    """
    seed = observation.seed
    timed_out = observation.timed_out_after_s is not None
    found: list[Violation] = []
    for job in observation.jobs:
        found.extend(_check_job(seed, job, timed_out=timed_out))
    found.extend(_check_posts(seed, observation.jobs, observation.sandbox))
    stray = sorted(
        key
        for key in observation.keys_without_ttl
        if key not in ALLOWED_PERSISTENT_KEYS and not key.startswith(_ALLOWED_PERSISTENT_PREFIXES)
    )
    if stray:
        found.append(Violation(seed, "keys_have_ttl", f"{len(stray)} keys without a TTL: {stray[:_SHOWN]}"))
    if observation.unexpected_exits:
        found.append(Violation(seed, "workers_survive", "; ".join(observation.unexpected_exits)))
    if observation.failed_calls:
        calls = observation.failed_calls
        found.append(Violation(seed, "calls_succeed", f"{len(calls)} calls failed: {list(calls[:_SHOWN])}"))
    order = {name: k for k, name in enumerate(INVARIANTS)}
    return sorted(found, key=lambda v: (v.job_id is None, v.job_id or "", order.get(v.invariant, len(order))))
