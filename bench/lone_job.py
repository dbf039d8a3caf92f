"""Benchmark: how long a lone single-contact job takes, early polls against the fixed schedule.

Run from the repository root::

    .venv/bin/python bench/lone_job.py                 # API delays 2 s and 20 s, 4 jobs each, about 3 minutes
    .venv/bin/python bench/lone_job.py --delays 2 --jobs 8

For each API processing time (the sandbox's, fixed), on a private Redis and an in-process
sandbox, a real worker at the default poll settings receives ``--jobs`` single-contact jobs,
one every 2 s, twice: with ``DROPQ_POLL_EARLY=false`` (the baseline: the fixed schedule, first
look at 32-40 s) and with the defaults (early polls while the budget has room; the first jobs
find no processing times learnt yet). Printed per run: each job's time from its send to its
finish, the median and the worst, their ratio to the baseline, and GETs per job. Target (issue
13): within the API's time plus 4 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from dropq.workers.jobs.ledger import JobLedger  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import WorkerProcess, client_app  # noqa: E402

SPACING_S = 2.0
DEFAULT_SCHEDULE = {"DROPQ_POLL_FIRST_S": "40", "DROPQ_POLL_BASE_S": "20", "DROPQ_POLL_CAP_S": "40"}


def run(redis_server: EmbeddedRedis, sandbox: SandboxServer, delay_s: float, jobs: int, early: bool,
        folder: Path) -> tuple[list[float], float]:  # fmt: skip
    """Send ``jobs`` lone contacts to a fresh worker; return each job's time and the GETs per job."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    sandbox.reset(processing_min_s=delay_s, processing_max_s=delay_s)
    env = worker_env(redis_server.url, sandbox, folder, **DEFAULT_SCHEDULE, DROPQ_POLL_EARLY=str(early).lower())
    worker = WorkerProcess(env, name=f"lone-{int(early)}").start()
    app = client_app(redis_server.url)
    sent: dict[str, float] = {}
    took: dict[str, float] = {}
    try:
        for n in range(jobs):
            job_id = f"lone-{n}"
            sent[job_id] = time.time()
            app.send_task("dropq.enrich", kwargs={"contacts": make_contacts(1, seed=n), "job_id": job_id})
            time.sleep(SPACING_S)
        ledger = JobLedger(client, ttl_s=3600)
        deadline = time.monotonic() + delay_s + 120
        while len(took) < jobs and time.monotonic() < deadline:
            for job_id in sent.keys() - took.keys():
                status = ledger.read(job_id)
                if status is not None and status.is_finished:
                    # The ledger's finish time (Redis's clock, this host's): jobs are watched once all are sent.
                    took[job_id] = status.finished_ms / 1000 - sent[job_id]
            time.sleep(0.05)
    finally:
        app.close()
        worker.stop()
        client.close()
    if len(took) < jobs:
        raise RuntimeError(f"only {len(took)} of {jobs} jobs finished")
    stats = sandbox.stats()
    gets = int(stats["polls_not_ready"]) + int(stats["polls_in_progress"]) + int(stats["polls_ready"])
    return [took[f"lone-{n}"] for n in range(jobs)], gets / jobs


def main() -> None:
    """Parse the options, run baseline and defaults per API delay, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delays", default="2,20", help="comma-separated API processing times, seconds")
    parser.add_argument("--jobs", type=int, default=4, help="single-contact jobs per run")
    args = parser.parse_args()
    print(f"{'API s':>5}  {'run':<22} {'median s':>8} {'worst s':>7} {'x base':>6} {'GET/job':>7}  each job (s)")
    started = time.monotonic()
    config = SandboxConfig(host="127.0.0.1", port=0, api_key="bench-lone-key")
    with (
        EmbeddedRedis() as redis_server,
        SandboxServer(config) as sandbox,
        tempfile.TemporaryDirectory(prefix="dropq-bench-lone-") as folder,
    ):
        for delay_s in (float(d) for d in args.delays.split(",")):
            base, base_gets = run(redis_server, sandbox, delay_s, args.jobs, False, Path(folder))
            new, new_gets = run(redis_server, sandbox, delay_s, args.jobs, True, Path(folder))
            for name, times, gets in (("fixed schedule (base)", base, base_gets), ("early polls", new, new_gets)):
                median = statistics.median(times)
                print(
                    f"{delay_s:>5g}  {name:<22} {median:>8.1f} {max(times):>7.1f}"
                    f" {median / statistics.median(base):>6.2f} {gets:>7.1f}  {' '.join(f'{t:.1f}' for t in times)}",
                    flush=True,
                )
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
