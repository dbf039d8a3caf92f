"""The soak's checker and planner: pure, no sockets; the checker must fire on each broken invariant."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dropq.workers.jobs.ledger import JobStatus
from tests.soak.invariants import (
    INVARIANTS,
    JobObservation,
    ScheduleObservation,
    Violation,
    check_schedule,
    describe_indexes,
)
from tests.soak.plan import BASE_KNOBS, Window, knobs_at, plan_schedule

N = 10
# A finished job of 10 rows: 6 enriched, 2 not found, 1 rejected, 1 duplicate.
FINISHED = JobStatus(
    job_id="j",
    state="finished",
    received=N,
    rejected=1,
    duplicates=1,
    batches=1,
    batches_submitted=1,
    batches_done=1,
    delivered=8,
    enriched=6,
    not_found=2,
    final_seen=1,
    input_end=N,
)
STATUSES = {"enriched": 6, "not_found": 2, "rejected": 1, "duplicate": 1}


def _job(**changes: Any) -> JobObservation:
    good = JobObservation(
        job_id="j",
        records=N,
        status=FINISHED,
        finished_status=FINISHED,
        jsonl_indexes=tuple(range(N)),
        jsonl_statuses=STATUSES,
        stream_indexes=tuple(reversed(range(N))),
        http_counts={i: 1 for i in range(N)},
        callback_counts={i: 2 for i in range(N)},
        on_done=1,
    )
    return dataclasses.replace(good, **changes)


def _ledger(**changes: Any) -> JobObservation:
    """The job with its ledger changed, the same at the end as when it was first seen finished."""
    status = dataclasses.replace(FINISHED, **changes)
    return _job(status=status, finished_status=status if status.is_finished else None)


def _schedule(job: JobObservation | None = None, **changes: Any) -> ScheduleObservation:
    good = ScheduleObservation(
        seed=7,
        jobs=(job or _job(),),
        sandbox={"batches_received": 1, "duplicate_batches_posted": 0, "records_received": 8},
        keys_without_ttl=("dropq:jobs",),
    )
    return dataclasses.replace(good, **changes)


def _broken(observation: ScheduleObservation) -> set[str]:
    return {v.invariant for v in check_schedule(observation)}


def test_a_clean_schedule_breaks_nothing() -> None:
    """Everything once where it must be, at least once elsewhere, counted and expiring: no violation."""
    assert check_schedule(_schedule()) == []


@pytest.mark.parametrize(
    ("observation", "invariant"),
    [
        (_schedule(_ledger(state="running")), "job_finished"),
        (_schedule(_job(status=None, finished_status=None), sandbox={}), "job_finished"),
        (
            _schedule(_ledger(received=N + 1), sandbox={"batches_received": 1, "records_received": 9}),
            "accounting",
        ),
        (_schedule(dataclasses.replace(_ledger(enriched=5), jsonl_statuses={**STATUSES, "enriched": 5})), "accounting"),
        (
            _schedule(
                dataclasses.replace(_ledger(received=N + 1, duplicates=2), jsonl_statuses={**STATUSES, "duplicate": 2})
            ),
            "accounting",
        ),
        (_schedule(_job(jsonl_statuses={**STATUSES, "enriched": 5, "failed": 1})), "outcomes_match_ledger"),
        (_schedule(_ledger(deliveries_failed=1)), "nothing_failed"),
        (_schedule(_job(finished_status=dataclasses.replace(FINISHED, finished_ms=1))), "finished_job_unchanged"),
        (_schedule(_job(jsonl_indexes=None)), "jsonl_exactly_once"),
        (_schedule(_job(jsonl_indexes=(0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9))), "jsonl_exactly_once"),
        (_schedule(_job(jsonl_indexes=(1, 0, 2, 3, 4, 5, 6, 7, 8, 9))), "jsonl_exactly_once"),
        (_schedule(_job(stream_indexes=tuple(range(N - 1)))), "stream_exactly_once"),
        (_schedule(_job(http_counts={i: 1 for i in range(N - 1)})), "http_at_least_once"),
        (_schedule(_job(callback_counts={})), "callback_at_least_once"),
        (_schedule(_job(on_done=0)), "callback_on_done"),
        (
            _schedule(sandbox={"batches_received": 2, "duplicate_batches_posted": 1, "records_received": 8}),
            "posted_twice_counted",
        ),
        (_schedule(sandbox={"batches_received": 0, "duplicate_batches_posted": 0}), "every_record_posted"),
        (_schedule(sandbox={"batches_received": 1, "records_received": 9}), "every_record_posted"),
        (_schedule(keys_without_ttl=("dropq:jobs", "dropq:job-seen:j")), "keys_have_ttl"),
        (_schedule(unexpected_exits=("worker w1 exited with 1",)), "workers_survive"),
        (_schedule(failed_calls=("1f3a: JobOptionsError",)), "calls_succeed"),
    ],
)
def test_each_broken_invariant_is_reported(observation: ScheduleObservation, invariant: str) -> None:
    """One thing wrong at a time: the checker names exactly that invariant."""
    assert invariant in INVARIANTS
    assert _broken(observation) == {invariant}


def test_a_post_counted_as_resubmitted_may_repeat() -> None:
    """A batch the sandbox got twice is fine when the ledger counts the re-POST."""
    status = dataclasses.replace(FINISHED, resubmitted=1)
    observation = _schedule(
        _job(status=status, finished_status=status),
        sandbox={
            "batches_received": 2,
            "duplicate_batches_posted": 1,
            "records_received": 16,
            "duplicate_records_posted": 8,
        },
    )
    assert check_schedule(observation) == []


def test_a_violation_names_its_seed_job_and_numbers() -> None:
    """The printed line says where to look: the seed to rerun, the job, and what was counted."""
    [violation] = check_schedule(_schedule(_job(stream_indexes=(0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9))))
    assert violation == Violation(7, "stream_exactly_once", violation.detail, "j")
    assert str(violation) == "seed 7 job j: stream_exactly_once: 1 rows more than once, 1 extra copies (first [1])"


def test_index_problems_are_described_with_counts_not_data() -> None:
    """Missing, repeated and foreign indexes are counted; a clean range says nothing."""
    assert describe_indexes(range(5), 5, ordered=True) is None
    assert describe_indexes([0, 2, 2, 7], 5, ordered=False) == (
        "3 missing (first [1, 3, 4]); 1 rows more than once, 1 extra copies (first [2]); "
        "1 indexes outside 0..4 (first [7])"
    )


def test_the_same_seed_gives_the_same_plan() -> None:
    """A schedule named in a violation can be run again alone: its plan depends on its seed only."""
    assert plan_schedule(17) == plan_schedule(17)
    assert plan_schedule(17) != plan_schedule(18)


@pytest.mark.parametrize("seed", range(40))
def test_plans_send_every_row_once_in_contiguous_parts(seed: int) -> None:
    """Each job's parts cover its rows from 0 without gaps, the last one final, and each part is sent once."""
    plan = plan_schedule(seed, records=None)
    for job in plan.jobs:
        assert [p.offset for p in job.parts] == [0, *(p.offset + p.count for p in job.parts[:-1])]
        assert sum(p.count for p in job.parts) == job.records
        assert [p.final for p in job.parts] == [False] * (len(job.parts) - 1) + [True]
        assert sorted(job.send_order) == list(range(len(job.parts)))
    if not plan.webhooks:
        assert not any(w.kind.startswith("webhook_") for w in plan.windows)


def test_open_windows_hold_their_knobs_and_the_later_one_wins() -> None:
    """Knobs come back to the base when windows close; of two open at once, the later one's values hold."""
    windows = (
        Window(1.0, 3.0, "api_errors", (("error_probability", 0.2),)),
        Window(2.0, 4.0, "api_errors", (("error_probability", 0.4),)),
        Window(2.5, 3.5, "credit_pause", (("credits", 0),)),
    )
    assert knobs_at(windows, 0.5) == BASE_KNOBS
    assert knobs_at(windows, 1.5)["error_probability"] == 0.2
    assert knobs_at(windows, 2.7) == {**BASE_KNOBS, "error_probability": 0.4, "credits": 0}
    assert knobs_at(windows, 3.9) == {**BASE_KNOBS, "error_probability": 0.4}
    assert knobs_at(windows, None) == BASE_KNOBS
