"""Benchmark: dropq's poll schedule against polling every 30 s, and against webhooks.

Run from the repository root::

    .venv/bin/python bench/polling.py                  # end to end, about 2 minutes
    .venv/bin/python bench/polling.py --simulate       # pure simulation: the trade-off curve, no I/O
    .venv/bin/python bench/polling.py --strategies baseline,defaults --batches 100

End to end, each strategy runs the same workload on a fresh worker process, a
private Redis and an in-process sandbox reset to the same seed: ``--batches``
one-batch jobs, 90% of them processed in 10-60 s and 10% in 60-180 s (the
API's "10 to 60 s, up to 3 minutes"; the sandbox draws uniformly from one
range, so the two sub-populations are submitted one after the other with the
range changed in between). Real time is too slow, so every duration (the
sandbox's processing times, every poll setting) is multiplied by ``--scale``
and the sandbox's rate limit divided by it; figures are printed back in
real-time-equivalent seconds. Per strategy it prints the GETs per batch (the
sandbox's count) and the delay between the moment the sandbox made a batch
ready and the moment dropq had its results (``fetched_ms`` on the batch),
mean and 95th percentile, each with its ratio to the baseline of the same run.

Strategies: ``baseline`` is the documented approach, a GET every 30 s
(PollSchedule(30, 30, factor 1), with dropq's ±20% jitter and the cap at
36 s so the mean interval stays 30 s); ``v0`` is dropq's first defaults
(10 s, then 5 s x1.5, capped at 60 s); ``defaults`` is ``PollSchedule()``
as it stands; ``webhooks`` is the defaults with a ``dropq webhooks``
receiver, where polling is only the safety net.

``--simulate`` computes the same two figures for any schedule from the
processing-time distribution alone (the schedule's own arithmetic, jitter
included, over 20,000 draws), for the named strategies and a grid of
schedules, and prints the Pareto front: the least delay for each GET budget.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from dropq.dropcontact.backoff import PollSchedule  # noqa: E402
from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers import keys  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis, free_port  # noqa: E402
from dropq.workers.jobs.ledger import JobLedger  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import WorkerProcess, client_app  # noqa: E402

API_KEY = "bench-polling-key"
SEED = 7
# The API's limit, requests per second; divided by the time scale in the sandbox and the limiter.
API_RATE_LIMIT = 60
# With webhooks the first poll waits out the API's documented worst case (dropq's default).
WEBHOOK_SAFETY_POLL_S = 180.0
# Waiting for a strategy's jobs, in scaled seconds, beyond the slowest batch.
FINISH_MARGIN_S = 60.0
SIMULATED_BATCHES = 20_000


@dataclass(frozen=True, slots=True)
class Workload:
    """Processing times: a body uniform over ``body_s``, and a share ``tail_share`` uniform over ``tail_s``."""

    body_s: tuple[float, float] = (10.0, 60.0)
    tail_s: tuple[float, float] = (60.0, 180.0)
    tail_share: float = 0.1

    def draw_s(self, rng: random.Random) -> float:
        """One processing time, in real seconds."""
        low, high = self.tail_s if rng.random() < self.tail_share else self.body_s
        return rng.uniform(low, high)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A way of waiting for results: a poll schedule (real seconds), with or without webhooks."""

    key: str
    name: str
    schedule: PollSchedule
    webhooks: bool = False


STRATEGIES = {
    "baseline": Strategy("baseline", "every 30 s (documented)", PollSchedule(30, 30, 1.0, 36)),
    "v0": Strategy("v0", "dropq v0 10/5x1.5/60", PollSchedule(10, 5, 1.5, 60)),
    "defaults": Strategy("defaults", "dropq defaults", PollSchedule()),
    "webhooks": Strategy("webhooks", "dropq defaults + webhooks", PollSchedule(), webhooks=True),
}


@dataclass(frozen=True, slots=True)
class Figures:
    """What one strategy cost and how fast it was, in real-time-equivalent seconds."""

    batches: int
    gets_per_batch: float
    mean_delay_s: float
    p95_delay_s: float
    failed: int = 0
    tail_mean_delay_s: float = 0.0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0


# --- pure simulation ----------------------------------------------------------------------------


def simulate(schedule: PollSchedule, workload: Workload, batches: int = SIMULATED_BATCHES, seed: int = 1) -> Figures:
    """GETs per batch and ready-to-fetched delay of a schedule, from its arithmetic alone (no I/O).

    The same ``seed`` gives every schedule the same processing times. A batch is
    fetched by the first poll at or after it is ready; past ``max_age_s`` the
    forced fetch ends the wait.
    """
    times = random.Random(seed)
    jitter = random.Random(seed + 1)
    gets = 0
    delays: list[float] = []
    for _ in range(batches):
        ready_s = workload.draw_s(times)
        at_s = schedule.delay_s(0, jitter)
        polls = 1
        while at_s < ready_s and not schedule.is_past_max_age(at_s):
            at_s += schedule.next_delay_s(polls, at_s, jitter)
            polls += 1
        gets += polls
        delays.append(max(0.0, at_s - ready_s))
    return Figures(batches, gets / batches, statistics.fmean(delays), _p95(delays))


def _grid() -> Iterator[PollSchedule]:
    for first in (10, 20, 25, 30, 35, 40, 45):
        for base in (5, 10, 15, 20, 25, 30, 40):
            for factor in (1.0, 1.2, 1.5):
                for cap in (30, 40, 60):
                    if base <= cap:
                        yield PollSchedule(first, base, factor, cap)


def _describe(schedule: PollSchedule) -> str:
    return f"first {schedule.first_s:g}, base {schedule.base_s:g} x{schedule.factor:g}, cap {schedule.cap_s:g}"


def run_simulation(workload: Workload) -> None:
    """Print the named strategies and the Pareto front of the grid, as ratios to the baseline."""
    base = simulate(STRATEGIES["baseline"].schedule, workload)
    print(f"pure simulation: {SIMULATED_BATCHES} batches, {_describe_workload(workload)}; jitter ±20% everywhere")
    header = f"{'schedule (real seconds)':<40} {'GETs/batch':>10} {'x base':>7} {'mean s':>7} {'x base':>7}"
    print(header + f" {'p95 s':>7} {'x base':>7} {'batches/s at 60 req/s':>22}")

    def line(name: str, figures: Figures) -> str:
        ceiling = API_RATE_LIMIT / (1 + figures.gets_per_batch)
        return (
            f"{name:<40} {figures.gets_per_batch:>10.2f} {figures.gets_per_batch / base.gets_per_batch:>7.2f}"
            f" {figures.mean_delay_s:>7.1f} {figures.mean_delay_s / base.mean_delay_s:>7.2f}"
            f" {figures.p95_delay_s:>7.1f} {figures.p95_delay_s / base.p95_delay_s:>7.2f} {ceiling:>22.1f}"
        )

    for strategy in STRATEGIES.values():
        if not strategy.webhooks:
            print(line(f"{strategy.key}: {_describe(strategy.schedule)}", simulate(strategy.schedule, workload)))
    results = sorted(
        ((simulate(s, workload, batches=SIMULATED_BATCHES // 4), s) for s in _grid()),
        key=lambda item: (item[0].gets_per_batch, item[0].mean_delay_s),
    )
    print(f"\nPareto front of the grid ({SIMULATED_BATCHES // 4} batches each; least mean delay per GET budget);")
    print("* = beats the baseline on both GETs and mean delay")
    best = float("inf")
    for figures, schedule in results:
        if figures.mean_delay_s < best:
            best = figures.mean_delay_s
            both = figures.gets_per_batch < base.gets_per_batch and figures.mean_delay_s < base.mean_delay_s
            print(line(("* " if both else "  ") + _describe(schedule), figures))


def _describe_workload(workload: Workload) -> str:
    body, tail = workload.body_s, workload.tail_s
    return (
        f"{1 - workload.tail_share:.0%} processed in {body[0]:g}-{body[1]:g} s,"
        f" {workload.tail_share:.0%} in {tail[0]:g}-{tail[1]:g} s"
    )


# --- end to end ---------------------------------------------------------------------------------


def _strategy_env(strategy: Strategy, scale: float, webhook_url: str | None) -> dict[str, str]:
    schedule = strategy.schedule
    env = {
        "DROPQ_POLL_FIRST_S": f"{schedule.first_s * scale:g}",
        "DROPQ_POLL_BASE_S": f"{schedule.base_s * scale:g}",
        "DROPQ_POLL_FACTOR": f"{schedule.factor:g}",
        "DROPQ_POLL_CAP_S": f"{schedule.cap_s * scale:g}",
        "DROPQ_POLL_MAX_AGE_S": f"{schedule.max_age_s * scale:g}",
        "DROPQ_RATE_LIMIT": f"{API_RATE_LIMIT / scale:g}",
        "DROPQ_LOG_LEVEL": "warning",
        # The fixed schedules compared here; early polls aim at absolute ages that --scale does not
        # shrink (bench/lone_job.py measures them).
        "DROPQ_POLL_EARLY": "false",
    }
    if webhook_url:
        env["DROPQ_WEBHOOK_URL"] = webhook_url
        env["DROPQ_WEBHOOK_SAFETY_POLL_S"] = f"{WEBHOOK_SAFETY_POLL_S * scale:g}"
    return env


@contextmanager
def _receiver(env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """A ``dropq webhooks`` process on 127.0.0.1:port, until the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dropq", "webhooks", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text == "ok":
                        break
                except requests.ConnectionError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the webhook receiver did not start:\n{log.read_text()}")
                time.sleep(0.1)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _send_jobs(redis_url: str, prefix: str, count: int, records: int) -> list[str]:
    app = client_app(redis_url)
    job_ids = [f"{prefix}-{i}" for i in range(count)]
    try:
        for i, job_id in enumerate(job_ids):
            contacts = make_contacts(records, seed=i)
            app.send_task(
                "dropq.enrich",
                queue="dropq.produce",
                kwargs={"contacts": contacts, "job_id": job_id, "destinations": ["jsonl"]},
            )
    finally:
        app.close()
    return job_ids


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


def _ready_wall_s(sandbox: SandboxServer, request_id: str) -> tuple[float, float]:
    """When the sandbox made a request ready (epoch seconds), and its processing time (scaled seconds).

    Read from the sandbox's state in this process: the sandbox exposes no per-request times.
    """
    runtime = sandbox.runtime
    with runtime.lock:
        state = runtime.state
        batch = state._batches[request_id]
        return batch.ready_at + state._wall_offset_s, batch.ready_at - batch.submitted_at


def run_strategy(
    strategy: Strategy, redis_server: EmbeddedRedis, sandbox: SandboxServer, args: argparse.Namespace, logs: Path
) -> Figures:
    """Run the workload with one strategy on a fresh worker; return its figures in real-time-equivalent seconds."""
    scale, workload = args.scale, Workload()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    tail_count = round(args.batches * workload.tail_share)
    body_count = args.batches - tail_count
    sandbox.reset(processing_min_s=workload.tail_s[0] * scale, processing_max_s=workload.tail_s[1] * scale)
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}" if strategy.webhooks else None
    env = worker_env(redis_server.url, sandbox, logs, **_strategy_env(strategy, scale, webhook_url))
    worker = WorkerProcess(env, concurrency=args.concurrency, name=f"poll-{strategy.key}")
    with ExitStack() as stack:
        stack.callback(client.close)
        if strategy.webhooks:
            stack.enter_context(_receiver(env, port, logs / f"receiver-{strategy.key}.log"))
        stack.callback(worker.stop)
        worker.start()
        # The slow sub-population first; once all of it is submitted, the fast one.
        jobs = _send_jobs(redis_server.url, f"{strategy.key}-tail", tail_count, args.records)
        _wait(lambda: sandbox.stats()["batches_received"] >= tail_count, 60, "the slow batches' submits")
        sandbox.configure(processing_min_s=workload.body_s[0] * scale, processing_max_s=workload.body_s[1] * scale)
        jobs += _send_jobs(redis_server.url, f"{strategy.key}-body", body_count, args.records)
        ledger = JobLedger(client, ttl_s=3600)

        def finished() -> bool:
            statuses = (ledger.read(job_id) for job_id in jobs)
            return all(status is not None and status.is_finished for status in statuses)

        _wait(finished, workload.tail_s[1] * scale + FINISH_MARGIN_S, f"{len(jobs)} jobs to finish")
        stats = sandbox.stats()
        delays: list[float] = []
        tail_delays: list[float] = []
        failed = 0
        for job_id in jobs:
            status = ledger.read(job_id)
            failed += status.failed if status is not None else 0
            batch_ids: set[str] = client.smembers(keys.job_batches_key(job_id))  # type: ignore[assignment]
            for batch_id in batch_ids:
                batch: dict[str, str] = client.hgetall(keys.batch_key(batch_id))  # type: ignore[assignment]
                if not batch.get("fetched_ms"):
                    continue
                ready_s, processing_s = _ready_wall_s(sandbox, batch["request_id"])
                delay = max(0.0, int(batch["fetched_ms"]) / 1000 - ready_s) / scale
                delays.append(delay)
                if processing_s >= workload.tail_s[0] * scale:
                    tail_delays.append(delay)
    gets = int(stats["polls_ready"]) + int(stats["polls_not_ready"]) + int(stats["polls_in_progress"])
    batches = int(stats["batches_received"])
    return Figures(
        batches=batches,
        gets_per_batch=gets / batches,
        mean_delay_s=statistics.fmean(delays),
        p95_delay_s=_p95(delays),
        failed=failed,
        tail_mean_delay_s=statistics.fmean(tail_delays) if tail_delays else 0.0,
    )


def run_end_to_end(args: argparse.Namespace) -> None:
    """Run the chosen strategies one after the other and print the table."""
    workload = Workload()
    chosen = [STRATEGIES[key.strip()] for key in args.strategies.split(",")]
    print(
        f"{args.batches} one-batch jobs x {args.records} records per strategy; {_describe_workload(workload)};"
        f" time x{args.scale:g}; figures in real-time-equivalent seconds; worker concurrency {args.concurrency}"
    )
    print("GETs: the sandbox's count; delay: sandbox ready -> dropq fetched_ms; ratios to the baseline of this run")
    print(
        f"{'strategy':<36} {'batches':>7} {'GETs/batch':>10} {'x base':>7} {'mean s':>7} {'x base':>7}"
        f" {'p95 s':>7} {'x base':>7} {'tail mean s':>11} {'failed':>6} {'sim GETs':>8} {'sim mean s':>10}"
    )
    started = time.monotonic()
    base: Figures | None = None
    config = SandboxConfig(host="127.0.0.1", port=0, api_key=API_KEY, seed=SEED)
    rate_limit = round(API_RATE_LIMIT / args.scale)
    with (
        EmbeddedRedis() as redis_server,
        SandboxServer(config, rate_limit=rate_limit) as sandbox,
        tempfile.TemporaryDirectory(prefix="dropq-bench-polling-") as logs,
    ):
        for strategy in chosen:
            figures = run_strategy(strategy, redis_server, sandbox, args, Path(logs))
            base = base or figures
            sim = simulate(strategy.schedule, workload) if not strategy.webhooks else None

            def ratio(value: float, reference: float) -> str:
                return f"{value / reference:>7.2f}" if reference else f"{'-':>7}"

            print(
                f"{strategy.key + ': ' + strategy.name:<36} {figures.batches:>7}"
                f" {figures.gets_per_batch:>10.2f} {ratio(figures.gets_per_batch, base.gets_per_batch)}"
                f" {figures.mean_delay_s:>7.1f} {ratio(figures.mean_delay_s, base.mean_delay_s)}"
                f" {figures.p95_delay_s:>7.1f} {ratio(figures.p95_delay_s, base.p95_delay_s)}"
                f" {figures.tail_mean_delay_s:>11.1f} {figures.failed:>6}"
                f" {f'{sim.gets_per_batch:.2f}' if sim else '-':>8} {f'{sim.mean_delay_s:.1f}' if sim else '-':>10}",
                flush=True,
            )
    print(f"total {time.monotonic() - started:.1f} s")


def main() -> None:
    """Parse the options and run the simulation or the end-to-end comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulate", action="store_true", help="pure simulation only (no I/O)")
    parser.add_argument("--batches", type=int, default=200, help="one-batch jobs per strategy")
    parser.add_argument("--records", type=int, default=50, help="records per batch (the schedule ignores size)")
    parser.add_argument("--scale", type=float, default=0.1, help="time scale: 0.1 runs 10x faster than real")
    parser.add_argument("--concurrency", type=int, default=4, help="worker pool processes")
    parser.add_argument(
        "--strategies", default="baseline,v0,defaults,webhooks", help="comma-separated: " + ", ".join(STRATEGIES)
    )
    args = parser.parse_args()
    if args.simulate:
        run_simulation(Workload())
    else:
        run_end_to_end(args)


if __name__ == "__main__":
    main()
