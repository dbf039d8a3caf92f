"""Benchmark: a trickle of tiny calls (a CRM's hooks), shared requests against a request per call.

Run from the repository root::

    .venv/bin/python bench/trickle.py                       # 200 contacts/s in calls of 2 for 30 s, twice
    .venv/bin/python bench/trickle.py --rate 100 --seconds 20

On a private Redis and an in-process sandbox that enforces 60 requests a second strictly (its
sliding window; results ready ``--api-s`` after each POST), ``dropq worker`` with its defaults gets
a stream of ``dropq.enrich`` calls, each its own job of ``--per-call`` contacts, paced at
``--rate`` contacts a second for ``--seconds``. Twice: with ``DROPQ_COALESCE_LINGER_S=0`` (the
baseline: one request per call, the behaviour before shared requests) and with the defaults.
Printed per run: records per POST, requests, 429s, the largest backlog (calls sent and not
finished), the time from the stream's end to the last job's finish (or the jobs still unfinished
``--grace`` seconds after it), and the worker's CPU seconds per 1,000 contacts. Targets (issue 13):
every job done within 60 s of the stream's end, at least 100 records per POST, no 429.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402

from bench.latency import DropqWorker  # noqa: E402
from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers import keys  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import client_app  # noqa: E402


@dataclass(frozen=True)
class Figures:
    """One run's figures."""

    name: str
    calls: int
    records_per_post: float
    requests: int
    rate_limited: int
    max_backlog: int
    last_job_after_s: float | None
    unfinished: int
    cpu_per_1000: float


def _finished(client: redis.Redis, job_ids: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hexists(keys.job_key(job_id), "finished_ms")
    return sum(1 for done in pipe.execute() if done)


def _cpu_s(worker: DropqWorker) -> float:
    assert worker.process is not None
    root = psutil.Process(worker.process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def run(name: str, linger: str | None, args: argparse.Namespace, redis_server: EmbeddedRedis,
        sandbox: SandboxServer, folder: Path) -> Figures:  # fmt: skip
    """One stream of calls through a fresh ``dropq worker``."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    sandbox.reset(processing_min_s=args.api_s, processing_max_s=args.api_s)
    extra = {"DROPQ_LOG_LEVEL": "warning"}
    if linger is not None:
        extra["DROPQ_COALESCE_LINGER_S"] = linger
    env = worker_env(redis_server.url, sandbox, folder, DROPQ_RATE_LIMIT="60", **extra)
    # The defaults' poll schedule, not the tests' fast one.
    for variable in ("DROPQ_POLL_FIRST_S", "DROPQ_POLL_BASE_S", "DROPQ_POLL_CAP_S", "DROPQ_POLL_MAX_AGE_S"):
        env.pop(variable)
    worker = DropqWorker(env, folder / f"{name}.log").start()
    calls = int(args.rate * args.seconds / args.per_call)
    contacts = make_contacts(calls * args.per_call, seed=5)
    job_ids = [f"hook-{n}" for n in range(calls)]
    app = client_app(redis_server.url)
    sent = 0

    def send() -> None:
        nonlocal sent
        started = time.monotonic()
        for n, job_id in enumerate(job_ids):
            due = started + n * args.per_call / args.rate
            time.sleep(max(0.0, due - time.monotonic()))
            part = contacts[n * args.per_call : (n + 1) * args.per_call]
            app.send_task("dropq.enrich", kwargs={"contacts": part, "job_id": job_id}, queue="dropq.produce")
            sent = n + 1

    cpu_before = _cpu_s(worker)
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    max_backlog = 0
    try:
        while sender.is_alive():
            time.sleep(1.0)
            max_backlog = max(max_backlog, sent - _finished(client, job_ids[:sent]))
        stream_end = time.monotonic()
        finished = _finished(client, job_ids)
        while finished < calls and time.monotonic() - stream_end < args.grace:
            time.sleep(0.5)
            finished = _finished(client, job_ids)
        last_after = time.monotonic() - stream_end if finished == calls else None
        cpu = _cpu_s(worker) - cpu_before
    finally:
        app.close()
        worker.stop()
        client.close()
    stats = sandbox.stats()
    posts = int(str(stats["batches_received"]))
    requests_made = sum(int(n) for n in stats["requests"].values())  # type: ignore[union-attr]
    return Figures(
        name=name,
        calls=calls,
        records_per_post=int(str(stats["records_received"])) / max(1, posts),
        requests=requests_made,
        rate_limited=int(str(stats["rate_limited"])),
        max_backlog=max_backlog,
        last_job_after_s=last_after,
        unfinished=calls - finished,
        cpu_per_1000=cpu / (calls * args.per_call) * 1000,
    )


def main() -> None:
    """Parse the options, run the baseline and the defaults, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="contacts a second")
    parser.add_argument("--per-call", type=int, default=2, help="contacts per call (each call its own job)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the stream lasts")
    parser.add_argument("--api-s", type=float, default=2.0, help="the API's processing time")
    parser.add_argument("--grace", type=float, default=90.0, help="how long to wait after the stream's end")
    args = parser.parse_args()
    config = SandboxConfig(host="127.0.0.1", port=0, api_key="bench-trickle-key")
    print(
        f"{args.rate:g} contacts/s in calls of {args.per_call} for {args.seconds:g} s, API {args.api_s:g} s, "
        "60 req/s enforced"
    )
    print(f"{'run':<28} {'rec/POST':>8} {'requests':>8} {'429s':>5} {'backlog':>7} {'last job':>9} {'CPU/1k':>7}")
    with (
        EmbeddedRedis() as redis_server,
        SandboxServer(config) as sandbox,
        tempfile.TemporaryDirectory(prefix="dropq-bench-trickle-") as folder,
    ):
        for name, linger in (("request per call (base)", "0"), ("shared requests (defaults)", None)):
            f = run(name, linger, args, redis_server, sandbox, Path(folder))
            last = f"{f.last_job_after_s:.1f} s" if f.last_job_after_s is not None else f"{f.unfinished} left"
            print(
                f"{f.name:<28} {f.records_per_post:>8.1f} {f.requests:>8} {f.rate_limited:>5} {f.max_backlog:>7}"
                f" {last:>9} {f.cpu_per_1000:>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
