"""Benchmark: is the pipeline ever the bottleneck at the API's limit (60 requests/s)?

Run from the repository root::

    .venv/bin/python bench/saturation.py                       # 150k records, 2 then 4 threads
    .venv/bin/python bench/saturation.py --records 100000 --concurrency 64
    .venv/bin/python bench/saturation.py --pool processes --concurrency 2,4  # the prefork pool
    .venv/bin/python bench/saturation.py --sandbox-process     # the sandbox as its own process

One job goes through the whole pipeline (produce, submit, poll, sink, jsonl
destination) on a real Celery worker, a private Redis and an in-process
sandbox that allows 60 requests per sliding second and answers 429 beyond;
dropq's limiter is set to the same 60/s. Batches are processed in 0.5-2 s, so
a batch costs one POST and about two GETs, and the job keeps the limit busy
for about half a minute. Everything, the sandbox included, shares this
machine's cores. With ``--sandbox-process`` the sandbox is a ``dropq sandbox``
process of its own (``bench/sandbox_process.py``), so this process cannot delay
its arrival stamps.

Baseline, in the same run: the sandbox's own ceiling at that limit, a flood
of client threads (no pipeline) POSTing and GETting as fast as they can for a
few seconds; it shows what "the limit fully used" looks like on this machine.

Printed per configuration: requests/s answered (not 429) over the steady part
(from the first request plus a warm-up until the last POST; before that, work
is always waiting) and its ratio to the limit, 429s received, the busiest
1-second windows seen by the sandbox (all requests, and accepted ones), the
job's wall time, and the CPU seconds each part used over the steady part.
The target is at least 0.95 x 60.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402
from sandbox_process import SandboxProcess  # noqa: E402

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from dropq.workers.jobs.ledger import JobLedger  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import WorkerProcess, client_app  # noqa: E402

API_KEY = "bench-saturation-key"
# The API's limit, requests per second, on the sandbox and in dropq's limiter.
RATE = 60
# Short processing, so GETs per batch stay few and POSTs keep the limit busy.
PROCESSING_S = (0.5, 2.0)
# Polls for that processing time: first look at 1 s, then 0.5 s x1.2, capped at 1 s.
POLLING = {"DROPQ_POLL_FIRST_S": "1", "DROPQ_POLL_BASE_S": "0.5", "DROPQ_POLL_FACTOR": "1.2", "DROPQ_POLL_CAP_S": "1"}
# Contacts per dropq.enrich call, as the CLI sends a large input in parts (a multiple of 250).
PART_SIZE = 2500
# Seconds after the first request before the steady part starts.
WARMUP_S = 3.0
SAMPLE_S = 0.25
CEILING_CLIENTS = 8
CEILING_S = 6.0

Sandbox = SandboxServer | SandboxProcess


@dataclass(frozen=True, slots=True)
class Sample:
    """The sandbox's counters at one moment."""

    at_s: float
    accepted: int
    batches: int


@dataclass(frozen=True, slots=True)
class Figures:
    """One configuration's result."""

    name: str
    ok_per_s: float
    steady_s: float
    rate_limited: int
    busiest: int
    busiest_accepted: int
    wall_s: float
    cpu_s: dict[str, float]


def _accepted(stats: dict[str, object]) -> int:
    counts = stats["status_counts"]
    return sum(n for status, n in counts.items() if status != "429")  # type: ignore[attr-defined]


class Sampler:
    """Samples the sandbox's counters from a thread, and the CPU of the processes that matter."""

    def __init__(self, sandbox: Sandbox, processes: Callable[[], dict[str, list[psutil.Process]]]) -> None:
        self.sandbox = sandbox
        self.samples: list[Sample] = []
        self.cpu: list[tuple[float, dict[str, float]]] = []
        self._processes = processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def start(self) -> Sampler:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            stats = self.sandbox.stats()
            now = time.monotonic()
            self.samples.append(Sample(now, _accepted(stats), int(stats["batches_received"])))
            self.cpu.append((now, _cpu_seconds(self._processes())))
            self._stop.wait(SAMPLE_S)


def _cpu_seconds(groups: dict[str, list[psutil.Process]]) -> dict[str, float]:
    result: dict[str, float] = {}
    for name, processes in groups.items():
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        result[name] = total
    return result


def process_tree(process: subprocess.Popen[bytes] | None) -> list[psutil.Process]:
    """A started process and all its descendants (its pool's processes), read now; [] once it is gone."""
    if process is None:
        return []
    try:
        parent = psutil.Process(process.pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def _send_job(redis_url: str, job_id: str, records: int) -> None:
    contacts = make_contacts(records, seed=3)
    app = client_app(redis_url)
    try:
        for offset in range(0, records, PART_SIZE):
            part = contacts[offset : offset + PART_SIZE]
            final = offset + PART_SIZE >= records
            kwargs = {"contacts": part, "job_id": job_id, "offset": offset, "final": final, "destinations": ["jsonl"]}
            app.send_task("dropq.enrich", queue="dropq.produce", kwargs=kwargs)
    finally:
        app.close()


def run_pipeline(
    concurrency: int, redis_server: EmbeddedRedis, sandbox: Sandbox, args: argparse.Namespace, logs: Path
) -> Figures:
    """Run one job through a worker with ``concurrency`` pool processes; return the figures."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    sandbox.reset()
    env = worker_env(redis_server.url, sandbox, logs, DROPQ_RATE_LIMIT=str(RATE), DROPQ_LOG_LEVEL="warning", **POLLING)
    worker = WorkerProcess(env, concurrency=concurrency, pool=args.pool, name=f"sat{concurrency}").start()
    redis_pid = int(client.info("server")["process_id"])
    redis_process = psutil.Process(redis_pid)
    me = psutil.Process()

    def processes() -> dict[str, list[psutil.Process]]:
        # The worker's pool processes are read each time: Celery may replace one.
        if isinstance(sandbox, SandboxProcess):
            return {"worker": process_tree(worker.process), "sandbox": sandbox.processes(), "bench": [me],
                    "redis": [redis_process]}  # fmt: skip
        return {"worker": process_tree(worker.process), "sandbox+bench": [me], "redis": [redis_process]}

    sampler = Sampler(sandbox, processes).start()
    started = time.monotonic()
    job_id = f"saturation-{concurrency}"
    expected_batches = -(-args.records // 250)
    try:
        _send_job(redis_server.url, job_id, args.records)
        ledger = JobLedger(client, ttl_s=3600)
        deadline = started + args.timeout
        while True:
            status = ledger.read(job_id)
            if status is not None and status.is_finished:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"job not finished after {args.timeout:g} s: {status}")
            time.sleep(0.25)
        wall_s = time.monotonic() - started
    finally:
        sampler.stop()
        worker.stop()
        client.close()
    stats = sandbox.stats()
    samples = sampler.samples
    first = next(s.at_s for s in samples if s.accepted > 0)
    last_post = next((s.at_s for s in samples if s.batches >= expected_batches), samples[-1].at_s)
    window = [s for s in samples if first + WARMUP_S <= s.at_s <= last_post]
    if len(window) < 2:
        raise RuntimeError("the steady part is too short: give more --records")
    begin, end = window[0], window[-1]
    cpu_begin = next(c for t, c in sampler.cpu if t >= begin.at_s)
    cpu_end = next(c for t, c in reversed(sampler.cpu) if t <= end.at_s)
    steady_s = end.at_s - begin.at_s
    return Figures(
        name=f"pipeline, 1 worker x {concurrency} {args.pool}",
        ok_per_s=(end.accepted - begin.accepted) / steady_s,
        steady_s=steady_s,
        rate_limited=int(stats["rate_limited"]),
        busiest=int(stats["max_requests_in_1s_window"]),
        busiest_accepted=int(stats["max_accepted_requests_in_1s_window"]),
        wall_s=wall_s,
        cpu_s={name: cpu_end[name] - cpu_begin[name] for name in cpu_end},
    )


def _flood(url: str, api_key: str, seconds: float, threads: int) -> None:
    """Client threads that POST a 250-record batch and GET it twice, as fast as answers come (no limiter)."""
    body = {"data": make_contacts(250, seed=5)}
    deadline = time.monotonic() + seconds

    def loop() -> None:
        session = requests.Session()
        session.headers["X-Access-Token"] = api_key
        while time.monotonic() < deadline:
            answer = session.post(f"{url}/v1/enrich/all", json=body, timeout=10)
            if answer.status_code == 200:
                request_id = answer.json()["request_id"]
                for _ in range(2):
                    session.get(f"{url}/v1/enrich/all/{request_id}", timeout=10)

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def run_ceiling(sandbox: Sandbox) -> Figures:
    """The sandbox's own ceiling at the limit: a client process flooding it with POSTs and GETs, no pipeline."""
    sandbox.reset()
    # A separate process, so the clients do not take the sandbox's GIL.
    flood = multiprocessing.get_context("spawn").Process(
        target=_flood, args=(sandbox.url, sandbox.api_key, CEILING_S + 2.0, CEILING_CLIENTS), daemon=True
    )
    flood.start()
    me = sandbox.processes()[0] if isinstance(sandbox, SandboxProcess) else psutil.Process()
    _wait_for(lambda: _accepted(sandbox.stats()) > 0, 30)
    time.sleep(1.0)
    cpu_before = me.cpu_times()
    before, at = _accepted(sandbox.stats()), time.monotonic()
    time.sleep(CEILING_S)
    after, steady_s = _accepted(sandbox.stats()), time.monotonic() - at
    cpu_after = me.cpu_times()
    flood.join(30)
    stats = sandbox.stats()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return Figures(
        name=f"ceiling: {CEILING_CLIENTS} client threads",
        ok_per_s=(after - before) / steady_s,
        steady_s=steady_s,
        rate_limited=int(stats["rate_limited"]),
        busiest=int(stats["max_requests_in_1s_window"]),
        busiest_accepted=int(stats["max_accepted_requests_in_1s_window"]),
        wall_s=CEILING_S,
        cpu_s={"sandbox": cpu},
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s")
        time.sleep(0.05)


def _print(figures: Figures) -> None:
    cpu = ", ".join(f"{name} {seconds / figures.steady_s:.2f}" for name, seconds in figures.cpu_s.items())
    print(
        f"{figures.name:<34} {figures.ok_per_s:>7.2f} {figures.ok_per_s / RATE:>6.3f} {figures.steady_s:>7.1f}"
        f" {figures.rate_limited:>6} {figures.busiest:>8} {figures.busiest_accepted:>9} {figures.wall_s:>7.1f}  {cpu}",
        flush=True,
    )


def main() -> None:
    """Parse the options, run the ceiling and the pipeline configurations, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=150_000, help="records in the job")
    parser.add_argument("--concurrency", default="2,4", help="comma-separated pool sizes to try, one run each")
    parser.add_argument("--pool", default="threads", choices=("processes", "threads"), help="the worker's pool")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds a job may take")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the sandbox-ceiling baseline")
    parser.add_argument(
        "--sandbox-process", action="store_true",
        help="run the sandbox as its own process (dropq sandbox), not in this busy one",
    )  # fmt: skip
    args = parser.parse_args()
    print(
        f"limit {RATE}/s on the sandbox and in dropq; one job of {args.records} records"
        f" ({-(-args.records // 250)} batches), processing {PROCESSING_S[0]:g}-{PROCESSING_S[1]:g} s;"
        f" {psutil.cpu_count()} cores"
    )
    print("ok/s: answers other than 429 per second over the steady part; CPU in cores used over that part")
    print(
        f"{'configuration':<34} {'ok/s':>7} {'/60':>6} {'steady':>7} {'429s':>6} {'busiest':>8} {'busiest':>9}"
        f" {'wall s':>7}  CPU (cores)"
    )
    print(f"{'':<34} {'':>7} {'':>6} {'s':>7} {'':>6} {'1s all':>8} {'1s ok':>9}")
    started = time.monotonic()
    config = SandboxConfig(
        host="127.0.0.1",
        port=0,
        api_key=API_KEY,
        rate_limit=RATE,
        processing_min_s=PROCESSING_S[0],
        processing_max_s=PROCESSING_S[1],
        credits=10 * args.records + 100_000,
    )
    results: list[Figures] = []
    with (
        EmbeddedRedis() as redis_server,
        tempfile.TemporaryDirectory(prefix="dropq-bench-saturation-") as logs,
        SandboxProcess(config, Path(logs) / "sandbox.log")
        if args.sandbox_process
        else SandboxServer(config) as sandbox,
    ):
        if not args.no_ceiling:
            _print(run_ceiling(sandbox))
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            figures = run_pipeline(concurrency, redis_server, sandbox, args, Path(logs))
            results.append(figures)
            _print(figures)
    if results:
        best = max(f.ok_per_s for f in results)
        print(
            f"best pipeline ratio {best / RATE:.3f} (target 0.95);"
            f" mean {statistics.fmean(f.ok_per_s for f in results) / RATE:.3f}"
        )
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
