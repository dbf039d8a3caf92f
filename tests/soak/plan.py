"""One soak schedule, drawn from its seed: the jobs, how their input is sent, and the faults with their times.

Pure: ``plan_schedule(seed)`` reads no clock and starts nothing, and the same
seed always gives the same plan, so a schedule that broke an invariant can be
run again alone (``bench/soak.py --seed S --schedules 1``). Times are seconds
from the first send. The runner (``schedule.py``) carries the plan out; what
the processes then do with it is only as deterministic as processes allow.

Three shapes of fault:

- events at one moment: a worker SIGKILLed (and replaced), a pool child
  SIGKILLed, Redis restarted, a job or one of its parts sent again;
- windows, during which sandbox knobs (or the http receiver's failure rate)
  hold other values: 5xx/524, dropped connections, lost answers, slow
  answers, 429 storms, credits at 0, lost or duplicated webhook pushes;
- resends after every job finished.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

__all__ = [
    "Part",
    "JobPlan",
    "Event",
    "Window",
    "SchedulePlan",
    "plan_schedule",
    "knobs_at",
    "BASE_KNOBS",
    "SANDBOX_CREDITS",
    "EVENT_KINDS",
    "WINDOW_KINDS",
    "RESEND_KINDS",
    "HTTP_DESTINATION",
]

# The idempotent destinations every job gets, and the at-least-once ones some jobs add.
IDEMPOTENT_DESTINATIONS = ("jsonl", "stream")
HTTP_DESTINATION = "http"

# Rows per job when the caller does not fix it: a job is one to three batches of 250.
MIN_RECORDS = 200
MAX_RECORDS = 600
# Events land within this many seconds of the first send, windows open within WINDOWS_OPEN_S: while a
# small job is in flight (its POSTs go out in the first two seconds, its GETs over the next few).
HORIZON_S = 4.0
WINDOWS_OPEN_S = 3.0
# Jobs after the first start within this many seconds of it.
JOBS_SPREAD_S = 1.5
# Later parts of a job are sent within this many seconds of the first.
PARTS_SPREAD_S = 2.0
# Point events and windows per schedule.
MIN_FAULTS = 3
MAX_FAULTS = 6

# The sandbox's balance at the start of every schedule: more than any schedule spends.
SANDBOX_CREDITS = 100_000
# What the knobs that windows move hold while no window is open: the sandbox's (and the http receiver's) own.
BASE_KNOBS: dict[str, float] = {
    "error_probability": 0.0,
    "drop_probability": 0.0,
    "lost_response_probability": 0.0,
    "slow_probability": 0.0,
    "slow_s": 2.0,
    "storm_probability": 0.0,
    "storm_s": 0.0,
    "credits": SANDBOX_CREDITS,
    "webhook_loss_probability": 0.0,
    "webhook_duplicate_probability": 0.0,
    "http_failure_probability": 0.0,
}

EVENT_KINDS = ("worker_kill", "child_kill", "redis_restart", "resend_job", "resend_part")
WINDOW_KINDS = (
    "api_errors",
    "api_drops",
    "lost_answers",
    "slow_answers",
    "storm_429",
    "storm_timed",
    "credit_pause",
    "webhook_loss",
    "webhook_duplicate",
    "http_failures",
)
RESEND_KINDS = ("resend_job_after_finish", "resend_part_after_finish")
# How often each kind is drawn; webhook and http kinds only where the schedule has them.
_WEIGHTS = {
    "worker_kill": 4,
    "child_kill": 1,
    "redis_restart": 3,
    "resend_job": 1,
    "resend_part": 1,
    "api_errors": 2,
    "api_drops": 1,
    "lost_answers": 2,
    "slow_answers": 1,
    "storm_429": 1,
    "storm_timed": 1,
    "credit_pause": 2,
    "webhook_loss": 2,
    "webhook_duplicate": 2,
    "http_failures": 1,
}


@dataclass(frozen=True, slots=True)
class Part:
    """One ``dropq.enrich`` call of a job: its rows ``offset`` to ``offset + count``."""

    offset: int
    count: int
    final: bool


@dataclass(frozen=True, slots=True)
class JobPlan:
    """A job: its rows, its parts in the order they are sent, and where its outcomes go.

    ``contact_seed`` and the shares of invalid and duplicate rows make the rows (see ``schedule.job_contacts``).
    """

    job_id: str
    records: int
    parts: tuple[Part, ...]
    send_order: tuple[int, ...]
    send_at_s: tuple[float, ...]
    destinations: tuple[str, ...]
    has_callback: bool
    contact_seed: int
    invalid_every: int
    duplicate_every: int


@dataclass(frozen=True, slots=True)
class Event:
    """A fault at one moment.

    ``target`` is a worker slot (kills), 0 for SIGKILL or 1 for SHUTDOWN (Redis), or a job (resends);
    ``part`` a part of that job (-1: the whole job); ``value`` a delay, a downtime or a pick among children.
    """

    at_s: float
    kind: str
    target: int = 0
    part: int = -1
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """A fault over a span: knobs (sandbox knobs, or ``http_failure_probability``) hold values while it is open."""

    start_s: float
    end_s: float
    kind: str
    knobs: tuple[tuple[str, float], ...]

    def is_open(self, at_s: float) -> bool:
        """Whether the window is open at ``at_s``."""
        return self.start_s <= at_s < self.end_s


@dataclass(frozen=True, slots=True)
class SchedulePlan:
    """Everything a schedule does, in time order within each kind."""

    seed: int
    jobs: tuple[JobPlan, ...]
    events: tuple[Event, ...]
    windows: tuple[Window, ...]
    after_finish: tuple[Event, ...]
    webhooks: bool
    workers: int

    @property
    def records(self) -> int:
        """Input rows over every job."""
        return sum(job.records for job in self.jobs)

    @property
    def last_fault_s(self) -> float:
        """When the last event fires or the last window closes."""
        ends = [e.at_s for e in self.events] + [w.end_s for w in self.windows]
        return max(ends, default=0.0)

    def fault_kinds(self) -> Counter[str]:
        """How many faults of each kind the plan holds (the runner counts those it injected)."""
        return Counter(
            [e.kind for e in self.events] + [w.kind for w in self.windows] + [e.kind for e in self.after_finish]
        )


def knobs_at(windows: Iterable[Window], at_s: float | None) -> dict[str, float]:
    """The knobs in force at ``at_s`` (None: every window closed); of two open windows, the later one wins."""
    knobs = dict(BASE_KNOBS)
    for window in windows:
        if at_s is not None and window.is_open(at_s):
            knobs.update(window.knobs)
    return knobs


def _parts(rng: random.Random, records: int) -> tuple[Part, ...]:
    count = rng.choice((1, 2, 3, 4))
    cuts = sorted(rng.sample(range(1, records), count - 1)) if count > 1 else []
    bounds = [0, *cuts, records]
    return tuple(Part(offset=start, count=end - start, final=end == records) for start, end in pairwise(bounds))


def _job(rng: random.Random, seed: int, index: int, records: int | None) -> JobPlan:
    n = records if records is not None else rng.randint(MIN_RECORDS, MAX_RECORDS)
    parts = _parts(rng, n)
    order = list(range(len(parts)))
    if len(parts) > 1 and rng.random() < 0.3:
        # A later part first: it waits in Redis until the parts before it are produced.
        rng.shuffle(order)
    first_s = round(rng.uniform(0.0, JOBS_SPREAD_S), 2) if index else 0.0
    send_at = tuple(sorted([first_s] + [round(first_s + rng.uniform(0.0, PARTS_SPREAD_S), 2) for _ in parts[1:]]))
    extra = (HTTP_DESTINATION,) if rng.random() < 0.5 else ()
    return JobPlan(
        job_id=f"soak-{seed}-{index}",
        records=n,
        parts=parts,
        send_order=tuple(order),
        send_at_s=send_at,
        destinations=(*IDEMPOTENT_DESTINATIONS, *extra),
        has_callback=rng.random() < 0.4,
        contact_seed=rng.randrange(1 << 30),
        invalid_every=rng.choice((0, 37, 53)),
        duplicate_every=rng.choice((0, 23, 41)),
    )


def _event(rng: random.Random, kind: str, at_s: float, jobs: tuple[JobPlan, ...], workers: int) -> Event:
    if kind == "worker_kill":
        # value: how long the slot stays empty before its replacement starts.
        return Event(at_s, kind, target=rng.randrange(workers), value=round(rng.uniform(0.0, 2.0), 2))
    if kind == "child_kill":
        return Event(at_s, kind, target=rng.randrange(workers), value=round(rng.random(), 3))
    if kind == "redis_restart":
        # target 0: SIGKILL (a crash); 1: SHUTDOWN (a clean stop); value: the downtime.
        return Event(at_s, kind, target=rng.randrange(2), value=round(rng.uniform(0.2, 2.5), 2))
    job = rng.randrange(len(jobs))
    part = rng.randrange(len(jobs[job].parts)) if kind.startswith("resend_part") else -1
    return Event(at_s, kind, target=job, part=part)


def _window(rng: random.Random, kind: str, start_s: float) -> Window:
    span_s = rng.uniform(1.5, 4.0)
    knobs: dict[str, float]
    if kind == "api_errors":
        knobs = {"error_probability": rng.uniform(0.2, 0.5)}
    elif kind == "api_drops":
        knobs = {"drop_probability": rng.uniform(0.15, 0.35)}
    elif kind == "lost_answers":
        knobs = {"lost_response_probability": rng.uniform(0.3, 0.7)}
    elif kind == "slow_answers":
        # Above the workers' 3 s read timeout a slow answer becomes a timeout: the POST is in doubt.
        knobs = {"slow_probability": rng.uniform(0.2, 0.5), "slow_s": rng.uniform(0.5, 4.0)}
    elif kind == "storm_429":
        knobs = {"storm_probability": rng.uniform(0.4, 0.9)}
    elif kind == "storm_timed":
        # Setting storm_s starts a storm of that length at once; every request gets 429.
        span_s = rng.uniform(0.5, 3.0)
        knobs = {"storm_s": span_s}
    elif kind == "credit_pause":
        knobs = {"credits": 0}
    elif kind == "webhook_loss":
        knobs = {"webhook_loss_probability": rng.uniform(0.5, 1.0)}
    elif kind == "webhook_duplicate":
        knobs = {"webhook_duplicate_probability": rng.uniform(0.5, 1.0)}
    else:
        # Deliveries come in bursts as batches close: a longer window finds one.
        span_s = rng.uniform(3.0, 6.0)
        knobs = {"http_failure_probability": rng.uniform(0.4, 0.8)}
    rounded = tuple((name, round(value, 3)) for name, value in sorted(knobs.items()))
    return Window(round(start_s, 2), round(start_s + span_s, 2), kind, rounded)


def plan_schedule(
    seed: int, *, records: int | None = None, workers: int = 2, max_faults: int = MAX_FAULTS
) -> SchedulePlan:
    """Draw a schedule from ``seed``.

    Args:
        seed: the schedule's seed; the same seed gives the same plan.
        records: rows per job; drawn between 200 and 600 when None.
        workers: worker processes the schedule runs (kills pick one of these slots).
        max_faults: the most events and windows drawn.

    Returns:
        The plan.
    """
    rng = random.Random(seed)
    webhooks = rng.random() < 0.35
    jobs = tuple(_job(rng, seed, index, records) for index in range(rng.choice((1, 1, 2, 2, 3))))
    has_http = any(HTTP_DESTINATION in job.destinations for job in jobs)
    kinds = [
        kind
        for kind in _WEIGHTS
        if (webhooks or not kind.startswith("webhook_")) and (has_http or kind != "http_failures")
    ]
    weights = [_WEIGHTS[kind] for kind in kinds]
    events: list[Event] = []
    windows: list[Window] = []
    for kind in rng.choices(kinds, weights, k=rng.randint(MIN_FAULTS, max(MIN_FAULTS, max_faults))):
        if kind in WINDOW_KINDS:
            windows.append(_window(rng, kind, rng.uniform(0.0, WINDOWS_OPEN_S)))
        else:
            events.append(_event(rng, kind, round(rng.uniform(0.2, HORIZON_S), 2), jobs, workers))
    after_finish = tuple(
        _event(rng, rng.choice(RESEND_KINDS), 0.0, jobs, workers) for _ in range(rng.choice((0, 1, 1, 2)))
    )
    return SchedulePlan(
        seed=seed,
        jobs=jobs,
        events=tuple(sorted(events, key=lambda e: e.at_s)),
        windows=tuple(sorted(windows, key=lambda w: w.start_s)),
        after_finish=after_finish,
        webhooks=webhooks,
        workers=workers,
    )
