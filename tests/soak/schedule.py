"""Run soak schedules: carry each plan out against real parts, wait for its jobs, observe, check.

One ``SoakRig`` holds what schedules share (the sandbox, served over real HTTP
from a thread, and the http destination's receiver), reset with the
schedule's seed before each one. Each schedule then gets its own private
Redis with persistence on, its own real ``celery -A dropq worker`` processes
(and ``dropq webhooks`` when the plan uses webhooks), and its own folder. The
runner's loop fires the plan's events at their times, holds the sandbox knobs
of the open windows, and reads the ledgers until every job is finished or the
deadline passes; then it resends what the plan resends after the finish, reads
everything back and runs the one checker (``invariants.check_schedule``).

The worker settings are short, so that a schedule takes seconds: polls every 1
to 2 s, a 3 s read timeout, and a 3 s stall timeout so that the watchdog sends
a SIGKILLed worker's steps again within the schedule (the broker's visibility
timeout keeps its one-hour default).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis
from celery.result import AsyncResult

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer
from dropq.workers.jobs.ledger import JobStatus
from tests.soak.calls import CALLER_TIMEOUT_S, EnrichSender, job_contacts, part_kwargs
from tests.soak.fleet import PersistentRedis, WebhookReceiverProcess, WorkerFleet
from tests.soak.invariants import ALLOWED_PERSISTENT_KEYS, ScheduleObservation, Violation, check_schedule
from tests.soak.observe import keys_without_ttl, observe_job, read_ledger
from tests.soak.plan import (
    HTTP_DESTINATION,
    MAX_FAULTS,
    SANDBOX_CREDITS,
    Event,
    JobPlan,
    SchedulePlan,
    knobs_at,
    plan_schedule,
)
from tests.soak.receivers import CallbackCounts, OutcomeReceiver, declare_callback_queue, drain_callbacks
from tests.support.pipeline import add_destination, worker_env

__all__ = ["SoakOptions", "ScheduleResult", "SoakRig", "run_soak", "WORKER_SETTINGS"]

# What the workers run with: short polls and timeouts, and a short stall timeout, so that the
# watchdog sends a SIGKILLed worker's steps again within the schedule. The broker's visibility
# timeout keeps its default (an hour): recovery must not depend on it.
WORKER_SETTINGS = {
    "DROPQ_POLL_FIRST_S": "1",
    "DROPQ_POLL_BASE_S": "1",
    "DROPQ_POLL_CAP_S": "2",
    "DROPQ_READ_TIMEOUT_S": "3",
    "DROPQ_CONNECT_TIMEOUT_S": "1",
    "DROPQ_STALL_TIMEOUT_S": "3",
    "DROPQ_CREDIT_RECHECK_S": "1",
    "DROPQ_MAX_RETRIES": "20",
    "DROPQ_WEBHOOK_SAFETY_POLL_S": "2",
}
# The sandbox processes a batch in 0.5 to 2.5 s: ready by its first to third poll, so faults find work in flight.
SANDBOX_PROCESSING_S = (0.5, 2.5)
# Sandbox pushes give up on the receiver after this (a push is one attempt; polling catches the lost ones).
SANDBOX_WEBHOOK_TIMEOUT_S = 2.0
# How long jobs get, after the last send and the last fault, to finish; past it the schedule is a violation.
FINISH_TIMEOUT_S = 60.0
# The runner's loop period, and how often it reads the ledgers.
_TICK_S = 0.05
_LEDGER_EVERY_S = 0.25
# A resend after the finish must be answered within this; then the workers get _SETTLE_S to act on it.
_RESEND_ANSWER_S = 15.0
_SETTLE_S = 1.5
# Events that may fire while Redis is away; the others wait for it.
_WITHOUT_REDIS = ("worker_kill", "child_kill")
_RECEIVER_KNOB = "http_failure_probability"


@dataclass(frozen=True, slots=True)
class SoakOptions:
    """How schedules are run.

    Args:
        records: rows per job (drawn per job when None).
        workers: worker processes per schedule.
        concurrency: pool processes per worker.
        max_faults: the most faults drawn per schedule.
        finish_timeout_s: how long jobs get to finish after the last send and fault.
        keep_artifacts: keep each schedule's folder (files, logs); by default only those with violations.
    """

    records: int | None = None
    workers: int = 2
    concurrency: int = 2
    max_faults: int = MAX_FAULTS
    finish_timeout_s: float = FINISH_TIMEOUT_S
    keep_artifacts: bool = False


@dataclass
class ScheduleResult:
    """What one schedule did and what the checker found.

    ``phases`` holds the seconds of setup, run (first send to every job finished), after finish, observe, teardown.
    """

    plan: SchedulePlan
    violations: list[Violation]
    injected: Counter[str]
    rows_checked: int
    duration_s: float
    phases: dict[str, float]
    figures: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    artifacts: Path | None = None

    @property
    def run_s(self) -> float:
        """Seconds from the first send until every job finished (or the deadline)."""
        return self.phases.get("run", 0.0)


def _figures(observation: ScheduleObservation) -> Counter[str]:
    """Counts worth printing beside the verdict: what the faults made the pipeline do."""
    figures: Counter[str] = Counter()
    stats = observation.sandbox
    for name in ("duplicate_batches_posted", "webhooks_lost", "webhooks_duplicated", "rate_limited"):
        figures[name] = int(stats.get(name, 0))
    for job in observation.jobs:
        if job.status is not None:
            figures["resubmitted"] += job.status.resubmitted
        figures["outcomes_read"] += len(job.jsonl_indexes or ()) + len(job.stream_indexes)
        for counts, name in ((job.http_counts, "http"), (job.callback_counts, "callback")):
            if counts:
                figures["outcomes_read"] += sum(counts.values())
                figures[f"{name}_repeats"] += sum(c - 1 for c in counts.values() if c > 1)
    return figures


@dataclass
class _Parts:
    """The running parts of one schedule."""

    server: PersistentRedis
    client: redis.Redis
    fleet: WorkerFleet
    sender: EnrichSender
    webhooks: WebhookReceiverProcess | None


class _ScheduleRun:
    """One schedule being carried out (see the module docstring)."""

    def __init__(self, rig: SoakRig, plan: SchedulePlan, folder: Path) -> None:
        self.rig = rig
        self.plan = plan
        self.folder = folder
        self.injected: Counter[str] = Counter()
        self.notes: list[str] = []
        self.figures: Counter[str] = Counter()
        self.contacts = {job.job_id: job_contacts(job) for job in plan.jobs}
        self.finished: dict[str, JobStatus] = {}
        self.applied = knobs_at(plan.windows, None)
        self.timed_out_after_s: float | None = None

    def start(self, stack: ExitStack) -> _Parts:
        """Start the schedule's Redis, receiver and workers; ``stack`` ends them, the last started first."""
        plan = self.plan
        server = PersistentRedis(self.folder / "redis").start()
        stack.callback(server.stop)
        client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
        stack.callback(client.close)
        # A Redis restart still running in the background ends before Redis is stopped.
        stack.callback(self.rig.join_background)
        out = self.folder / "out"
        out.mkdir()
        env = worker_env(server.url, self.rig.sandbox, out, **WORKER_SETTINGS)
        env["CELERY_BROKER_URL"] = server.url
        add_destination(env, HTTP_DESTINATION, "http", url=self.rig.receiver.url, timeout_s=2)
        webhooks = None
        if plan.webhooks:
            webhooks = WebhookReceiverProcess(env, self.folder / "webhooks.log")
            stack.callback(webhooks.stop)
            env["DROPQ_WEBHOOK_URL"] = webhooks.url
            webhooks.start()
        if any(job.has_callback for job in plan.jobs):
            declare_callback_queue(server.url)
        fleet = WorkerFleet(env, plan.workers, self.rig.options.concurrency, f"s{plan.seed}", server)
        stack.callback(fleet.kill_all, self.folder / "logs")
        fleet.start_all()
        sender = EnrichSender(server.url)
        stack.callback(sender.close)
        return _Parts(server, client, fleet, sender, webhooks)

    # --- the run --------------------------------------------------------------------------------

    def apply_knobs(self, at_s: float | None) -> None:
        """Hold the knobs of the windows open at ``at_s`` (None: every window closed)."""
        wanted = knobs_at(self.plan.windows, at_s)
        changes = {name: value for name, value in wanted.items() if self.applied.get(name) != value}
        if not changes:
            return
        if _RECEIVER_KNOB in changes:
            self.rig.receiver.failure_probability = changes.pop(_RECEIVER_KNOB)
        if changes:
            self.rig.sandbox.configure(**changes)
        self.applied = wanted

    def _send_part(self, parts: _Parts, job: JobPlan, part_index: int, label: str) -> Future[AsyncResult | None]:
        return parts.sender.send(part_kwargs(job, self.contacts[job.job_id], part_index), label)

    def _resend(self, parts: _Parts, event: Event) -> list[Future[AsyncResult | None]]:
        job = self.plan.jobs[event.target]
        indexes = range(len(job.parts)) if event.part < 0 else [event.part]
        return [self._send_part(parts, job, k, f"{event.kind} {job.job_id}") for k in indexes]

    def _fire(self, parts: _Parts, event: Event) -> bool:
        """Inject one event; False when there was nothing to hit (a slot with no worker running, say)."""
        if event.kind == "worker_kill":
            return parts.fleet.kill(event.target, event.value)
        if event.kind == "child_kill":
            return parts.fleet.kill_child(event.target, event.value)
        if event.kind == "redis_restart":
            if not parts.server.up.is_set():
                return False
            clean = event.target == 1
            # Down from now on, for the loop: no second restart, send or resend until it is back.
            parts.server.up.clear()
            self.rig.background(lambda: parts.server.restart(clean=clean, downtime_s=event.value))
            return True
        self._resend(parts, event)
        return True

    def _fault_name(self, event: Event) -> str:
        if event.kind == "redis_restart":
            return "redis_restart_shutdown" if event.target == 1 else "redis_restart_sigkill"
        return event.kind

    def _read_ledgers(self, client: redis.Redis) -> None:
        for job in self.plan.jobs:
            if job.job_id in self.finished:
                continue
            try:
                status = read_ledger(client, job.job_id)
            except (redis.RedisError, OSError):
                return
            if status is not None and status.is_finished:
                self.finished[job.job_id] = status

    def run(self, parts: _Parts) -> float:
        """Carry the plan out; returns the seconds from the first send until every job finished (or the deadline)."""
        plan = self.plan
        sends = sorted(
            (job.send_at_s[k], j, job.send_order[k]) for j, job in enumerate(plan.jobs) for k in range(len(job.parts))
        )
        events = list(plan.events)
        deadline_s = max(max(at for at, _, _ in sends), plan.last_fault_s) + self.rig.options.finish_timeout_s
        started = time.monotonic()
        last_read_s = 0.0
        while True:
            now_s = time.monotonic() - started
            self.apply_knobs(now_s)
            is_up = parts.server.up.is_set()
            while sends and sends[0][0] <= now_s and is_up:
                _, j, k = sends.pop(0)
                self._send_part(parts, plan.jobs[j], k, f"send {plan.jobs[j].job_id} part {k}")
            while events and events[0].at_s <= now_s and (parts.server.up.is_set() or events[0].kind in _WITHOUT_REDIS):
                event = events.pop(0)
                if self._fire(parts, event):
                    self.injected[self._fault_name(event)] += 1
                else:
                    self.notes.append(f"{event.kind} at {event.at_s}s not injected: nothing to hit")
            parts.fleet.check()
            self._check_webhooks(parts)
            if now_s - last_read_s >= _LEDGER_EVERY_S and parts.server.up.is_set():
                last_read_s = now_s
                self._read_ledgers(parts.client)
                parts.sender.retry_unstarted()
            if not sends and len(self.finished) == len(plan.jobs):
                break
            if now_s > deadline_s:
                self.timed_out_after_s = round(now_s, 1)
                break
            time.sleep(_TICK_S)
        run_s = time.monotonic() - started
        self._count_windows(run_s)
        self.notes.extend(f"{e.kind} at {e.at_s}s skipped: every job had finished" for e in events)
        self.apply_knobs(None)
        return run_s

    def _count_windows(self, run_s: float) -> None:
        for window in self.plan.windows:
            if window.start_s < run_s:
                self.injected[window.kind] += 1
            else:
                self.notes.append(f"{window.kind} at {window.start_s}s skipped: every job had finished")

    def _check_webhooks(self, parts: _Parts) -> None:
        if parts.webhooks is None or not parts.server.up.is_set():
            return
        try:
            parts.webhooks.check()
        except RuntimeError as exc:
            self.notes.append(str(exc))

    def after_finish(self, parts: _Parts) -> None:
        """Resend what the plan resends once every job finished, and give the workers time to act on it."""
        if self.timed_out_after_s is not None or not self.plan.after_finish:
            return
        self.rig.join_background()
        futures = []
        for event in self.plan.after_finish:
            futures.extend(self._resend(parts, event))
            self.injected[event.kind] += 1
        parts.sender.wait_answered(futures, _RESEND_ANSWER_S)
        time.sleep(_SETTLE_S)

    # --- observing ------------------------------------------------------------------------------

    def observe(self, parts: _Parts) -> ScheduleObservation:
        """Read back everything the checker looks at."""
        self.rig.join_background()
        parts.server.up.wait(30)
        parts.fleet.join()
        has_callbacks = any(job.has_callback for job in self.plan.jobs)
        callbacks = drain_callbacks(parts.server.url) if has_callbacks else CallbackCounts()
        jobs = tuple(
            observe_job(
                parts.client,
                job,
                self.folder / "out",
                finished_status=self.finished.get(job.job_id),
                receiver=self.rig.receiver,
                callbacks=callbacks,
            )
            for job in self.plan.jobs
        )
        exits = list(parts.fleet.unexpected_exits)
        if parts.webhooks is not None:
            exits.extend(parts.webhooks.unexpected_exits)
        if parts.sender.retried:
            self.notes.append(
                f"{parts.sender.retried} calls not started after {CALLER_TIMEOUT_S:.0f} s were sent again"
            )
        self.notes.extend(f"never published: {call}" for call in parts.sender.unsent)
        for label, task_id, state in parts.sender.call_states():
            if state != "SUCCESS":
                at_s, tries = parts.sender.published.get(label, (None, 0))
                self.notes.append(f"call {label!r} (task {task_id}) is {state}: published at {at_s} s, {tries} tries")
        self.notes.extend(f"worker start failed: {failure}" for failure in parts.fleet.start_failures)
        observation = ScheduleObservation(
            seed=self.plan.seed,
            jobs=jobs,
            sandbox=self.rig.sandbox.stats(),
            keys_without_ttl=keys_without_ttl(parts.client),
            unexpected_exits=tuple(exits),
            failed_calls=tuple(parts.sender.failed_calls()),
            timed_out_after_s=self.timed_out_after_s,
        )
        allowed = [key for key in observation.keys_without_ttl if key in ALLOWED_PERSISTENT_KEYS]
        if allowed:
            self.notes.append(f"keys without a TTL, allowed: {allowed}")
        self.figures = _figures(observation)
        return observation


def _keep_or_remove(folder: Path, keep: bool) -> Path | None:
    if keep:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    return None


class SoakRig:
    """What every schedule shares: the sandbox (over HTTP, in a thread) and the http destination's receiver.

    Args:
        options: how schedules are run.
    """

    def __init__(self, options: SoakOptions | None = None) -> None:
        self.options = options or SoakOptions()
        config = SandboxConfig(
            host="127.0.0.1",
            port=0,
            processing_min_s=SANDBOX_PROCESSING_S[0],
            processing_max_s=SANDBOX_PROCESSING_S[1],
            credits=SANDBOX_CREDITS,
            webhook_timeout_s=SANDBOX_WEBHOOK_TIMEOUT_S,
        )
        self.sandbox = SandboxServer(config)
        self.receiver = OutcomeReceiver()
        self._background: list[Future[None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-fault")

    def background(self, action: Callable[[], None]) -> None:
        """Run a fault that takes time (a Redis restart) beside the runner's loop."""
        self._background.append(self._pool.submit(action))

    def join_background(self) -> None:
        """Wait for the faults running in the background."""
        while self._background:
            self._background.pop().result(timeout=60)

    def run(self, seed: int) -> ScheduleResult:
        """Plan the schedule of ``seed``, carry it out, and check it."""
        options = self.options
        plan = plan_schedule(seed, records=options.records, workers=options.workers, max_faults=options.max_faults)
        self.sandbox.reset(seed=seed)
        self.receiver.reset(seed)
        folder = Path(tempfile.mkdtemp(prefix=f"dropq-soak-{seed}-"))
        run = _ScheduleRun(self, plan, folder)
        violations: list[Violation] = []
        phases: dict[str, float] = {}
        began = mark = time.monotonic()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            phases[name] = round(now - mark, 2)
            mark = now

        keep = options.keep_artifacts
        try:
            with ExitStack() as stack:
                parts = run.start(stack)
                lap("setup")
                run.run(parts)
                lap("run")
                run.after_finish(parts)
                lap("after finish")
                violations = check_schedule(run.observe(parts))
                lap("observe")
        except BaseException:
            keep = True
            raise
        finally:
            run.apply_knobs(None)
            lap("teardown")
            artifacts = _keep_or_remove(folder, keep or bool(violations))
        return ScheduleResult(
            plan=plan,
            violations=violations,
            injected=run.injected,
            rows_checked=plan.records,
            duration_s=time.monotonic() - began,
            phases=phases,
            figures=run.figures,
            notes=run.notes,
            artifacts=artifacts,
        )

    def __enter__(self) -> SoakRig:
        self.sandbox.start()
        self.receiver.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pool.shutdown(wait=True)
        self.receiver.__exit__(exc_type, exc, tb)
        self.sandbox.stop()


def run_soak(
    seeds: Iterable[int],
    options: SoakOptions | None = None,
    on_result: Callable[[ScheduleResult], None] | None = None,
) -> list[ScheduleResult]:
    """Run one schedule per seed, one after the other, and return their results.

    Args:
        seeds: the schedules' seeds.
        options: how schedules are run.
        on_result: called with each result as soon as its schedule is checked (for progress lines).
    """
    results = []
    with SoakRig(options) as rig:
        for seed in seeds:
            result = rig.run(seed)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
