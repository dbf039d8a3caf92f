"""Benchmark: dropq's shared limiter against Celery's per-worker ``rate_limit``, on a sandbox enforcing N/s.

Run: ``.venv/bin/python bench/limiter.py [--rate 20] [--seconds 8] [--workers 4]``

For each scenario it starts a fresh sandbox with a strict limit (N accepted
requests per sliding second, 429 beyond) and four Celery worker processes
(``bench/limiter_app.py``, solo pool, one process each) on a private Redis,
floods them with more work than the limit allows, and measures over the
steady part:

- ``dropq``: every task takes a token from the one Redis limiter all workers
  share; short waits are slept, long ones re-enqueued with a countdown.
- ``celery``: the task carries ``rate_limit="N/s"``, which Celery enforces per
  worker process: four workers offer 4 N/s.
- ``celery-split``: ``rate_limit`` of N/4 per second per worker, what an
  operator might try instead; unsynchronised buckets still make bursts.

It prints requests/s answered 200, 429s received, and the busiest 1-second
window seen by the sandbox, each as a ratio to N. Everything runs in about
a minute on two cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from celery import Celery  # noqa: E402

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402

HERE = Path(__file__).resolve().parent
API_KEY = "bench-limiter-key"
# Work is offered for this long before measuring, so every worker is busy.
WARMUP_S = 2.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One run: which task, and the per-worker Celery rate limit (the baseline's knob)."""

    name: str
    task: str
    celery_rate: str


def _scenarios(rate: int, workers: int) -> dict[str, Scenario]:
    return {
        "dropq": Scenario("dropq shared limiter", "bench.dropq_get", f"{rate}/s"),
        "celery": Scenario(f"celery rate_limit={rate}/s", "bench.celery_get", f"{rate}/s"),
        "celery-split": Scenario(
            f"celery rate_limit={rate / workers:g}/s", "bench.celery_get", f"{rate * 60 // workers}/m"
        ),
    }


def _start_sandbox(rate: int) -> SandboxServer:
    """A fresh sandbox on a free port that accepts N requests per sliding second and answers 429 beyond."""
    return SandboxServer(SandboxConfig(port=0, api_key=API_KEY, rate_limit=rate)).start()


def _start_workers(count: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    workers = []
    for i in range(count):
        args = [
            sys.executable, "-m", "celery", "-A", "limiter_app", "worker", "-P", "solo", "-Q", "bench",
            "-n", f"bench{i}@%h", "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "warning",
        ]  # fmt: skip
        log = (logs / f"worker{i}.log").open("wb")
        workers.append(
            subprocess.Popen(args, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    return workers


def _wait_ready(app: Celery, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5)) >= count:
            return
    raise RuntimeError(f"fewer than {count} bench workers answered within {timeout_s}s")


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
    for worker in workers:
        worker.wait(timeout=10)


def run_scenario(
    scenario: Scenario, redis_server: EmbeddedRedis, args: argparse.Namespace, logs: Path
) -> dict[str, float]:
    """Run one scenario and return its figures."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    server = _start_sandbox(args.rate)
    env = {
        **os.environ,
        "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}",
        "BENCH_REDIS_URL": redis_server.url,
        "BENCH_SANDBOX_URL": server.url,
        "BENCH_API_KEY": server.api_key,
        "BENCH_RATE": str(args.rate),
        "BENCH_CELERY_RATE": scenario.celery_rate,
    }
    app = Celery("bench-client", broker=redis_server.url)
    app.conf.update(task_serializer="json", accept_content=["json"], task_default_queue="bench")
    workers = _start_workers(args.workers, env, logs)
    try:
        _wait_ready(app, args.workers)
        # More work than the limit allows for the whole run, whatever the scenario.
        offered = int(args.workers * args.rate * (WARMUP_S + args.seconds + 2))
        with app.producer_or_acquire() as producer:
            for _ in range(offered):
                app.send_task(scenario.task, queue="bench", producer=producer)
        time.sleep(WARMUP_S)
        before = server.stats()
        time.sleep(args.seconds)
        after = server.stats()
    finally:
        _stop_workers(workers)
        server.stop()
        app.close()
        client.close()
    ok = int(after["status_counts"].get("200", 0)) - int(before["status_counts"].get("200", 0))
    limited = int(after["rate_limited"]) - int(before["rate_limited"])
    return {
        "ok_per_s": ok / args.seconds,
        "429_per_s": limited / args.seconds,
        "429_total": float(after["rate_limited"]),
        "busiest": float(after["max_requests_in_1s_window"]),
    }


def main() -> None:
    """Parse the options, run the scenarios, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=20, help="the limit N, on the sandbox and in dropq")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per scenario")
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes per scenario")
    parser.add_argument(
        "--scenarios", default="dropq,celery,celery-split", help="comma-separated: dropq, celery, celery-split"
    )
    args = parser.parse_args()
    scenarios = _scenarios(args.rate, args.workers)
    print(f"limit N={args.rate}/s on the sandbox; {args.workers} worker processes; {args.seconds:g} s measured each")
    print("200/s and 429/s over the measured seconds; 429 total and the busiest 1 s window over the whole run")
    print(
        f"{'scenario':<28} {'200/s':>8} {'/N':>6} {'429/s':>8} {'/N':>6} {'429 total':>10} {'busiest 1s':>11} {'/N':>6}"
    )
    started = time.monotonic()
    with EmbeddedRedis() as redis_server, tempfile.TemporaryDirectory(prefix="dropq-bench-") as logs:
        for key in args.scenarios.split(","):
            scenario = scenarios[key.strip()]
            figures = run_scenario(scenario, redis_server, args, Path(logs))
            n = args.rate
            print(
                f"{scenario.name:<28} {figures['ok_per_s']:>8.2f} {figures['ok_per_s'] / n:>6.3f}"
                f" {figures['429_per_s']:>8.2f} {figures['429_per_s'] / n:>6.3f} {figures['429_total']:>10.0f}"
                f" {figures['busiest']:>11.0f} {figures['busiest'] / n:>6.3f}",
                flush=True,
            )
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
