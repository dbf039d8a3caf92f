"""Benchmark: Redis memory while a job runs and after it finished, as the input grows.

Run from the repository root::

    .venv/bin/python bench/redis_memory.py                    # 100k and 300k contacts through the task API
    .venv/bin/python bench/redis_memory.py --sizes 1000000
    .venv/bin/python bench/redis_memory.py --sizes 100000,3000000 --cli   # through dropq enrich, a CSV each

For each size, on a private Redis (no other data), a fast in-process sandbox (1,000 requests a
second, results in 0.05-0.2 s) and one ``dropq worker`` with its defaults, a caller sends one job
in parts of 2,500 contacts, all at once (as an application does); with ``--paced``, as the README's
task API recommends for a large job: at most ``PACED_CALLS`` calls unanswered, each result awaited
(a call past ``DROPQ_MAX_WAITING_CONTACTS`` is answered once admitted). Printed: Redis ``used_memory``
idle, its peak over the job (sampled every 0.1 s) above idle, per contact; what is left above idle
after the job finished (bytes per contact); and, at the peak, the share of the memory held by
each kind of key (``MEMORY USAGE`` of a sample of keys, by the ``kind`` part of their name).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from dropq.workers.jobs.ledger import JobLedger  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import client_app  # noqa: E402

PART = 2500
# Calls a paced caller keeps unanswered.
PACED_CALLS = 4
RATE = 1000
FAST = {"DROPQ_POLL_FIRST_S": "0.3", "DROPQ_POLL_BASE_S": "0.3", "DROPQ_POLL_CAP_S": "1"}


class Peak:
    """Samples ``used_memory`` and, at each new peak, what kinds of keys hold it."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.peak = 0
        self.kinds: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._last_census = 0.0

    def start(self) -> Peak:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            used = int(self.client.info("memory")["used_memory"])
            if used > self.peak:
                self.peak = used
                if time.monotonic() - self._last_census > 2.0:
                    self.kinds = census(self.client)
                    self._last_census = time.monotonic()


def census(client: redis.Redis, per_kind: int = 200) -> Counter[str]:
    """Estimated bytes per key kind: ``MEMORY USAGE`` (every field) of up to ``per_kind`` keys of each kind,
    scaled to that kind's key count (a kind of a few big keys, the broker's ``unacked``, is measured whole)."""
    by_kind: dict[str, list[str]] = {}
    for key in client.scan_iter(count=5000):
        name = str(key)
        kind = name.split(":")[1] if name.count(":") >= 1 and name.startswith("dropq:") else name.split(":")[0]
        if kind.startswith("celery-task-meta-"):  # one result key per task
            kind = "celery-task-meta"
        by_kind.setdefault(kind, []).append(name)
    rng = random.Random(1)
    kinds: Counter[str] = Counter()
    for kind, names in by_kind.items():
        picked = rng.sample(names, min(per_kind, len(names)))
        # SAMPLES 0: every field (the default samples 5 and extrapolates, badly for a hash of mixed sizes).
        measured = sum(int(client.memory_usage(name, samples=0) or 0) for name in picked)
        kinds[kind] = int(measured * len(names) / len(picked))
    return kinds


def _send_through_the_cli(size: int, job_id: str, env: dict[str, str], folder: Path) -> None:
    """Write ``size`` distinct people to a CSV and run ``dropq enrich`` on it (it returns once the job is done)."""
    source, output = folder / f"input-{size}.csv", folder / f"output-{size}.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First Name", "Last Name", "Company", "Website"])
        for i in range(size):
            writer.writerow(["Ada", f"Person{i}", "Acme", "acme.example"])
    done = subprocess.run(
        [sys.executable, "-m", "dropq", "enrich", str(source), "-o", str(output), "--job-id", job_id, "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 3):
        raise RuntimeError(f"dropq enrich exited {done.returncode}: {done.stderr[-2000:]}")
    source.unlink()
    output.unlink()


def run(
    size: int, redis_server: EmbeddedRedis, sandbox: SandboxServer, folder: Path, *, paced: bool, cli: bool = False
) -> None:
    """One job of ``size`` contacts; print its figures."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    sandbox.reset()
    time.sleep(0.5)
    idle = int(client.info("memory")["used_memory"])
    env = {**os.environ, **worker_env(redis_server.url, sandbox, folder, DROPQ_RATE_LIMIT=str(RATE), **FAST)}
    env.update({"DROPQ_LOG_LEVEL": "warning", "DROPQ_LOG_FORMAT": "json"})
    with (folder / f"worker-{size}.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dropq", "worker", "-l", "warning", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    peak = Peak(client).start()
    app = client_app(redis_server.url)
    started = time.monotonic()
    try:
        job_id = f"memory-{size}"
        pending: list[object] = []
        if cli:
            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=0.5) and time.monotonic() < deadline:
                pass  # the CLI's pre-flight wants a worker that answers
            _send_through_the_cli(size, job_id, env, folder)
        for offset in range(0, size if not cli else 0, PART):
            contacts = make_contacts(min(PART, size - offset), seed=offset)
            for i, contact in enumerate(contacts):  # distinct contacts across parts
                contact["last_name"] = f"{contact.get('last_name', 'x')}{offset + i}"
            final = offset + PART >= size
            kwargs = {"contacts": contacts, "job_id": job_id, "offset": offset, "final": final}
            pending.append(app.send_task("dropq.enrich", kwargs=kwargs))
            while paced and len(pending) >= PACED_CALLS:
                pending.pop(0).get(timeout=600)  # type: ignore[attr-defined]
        ledger = JobLedger(client, ttl_s=3600)
        while True:
            status = ledger.read(job_id)
            if status is not None and status.is_finished:
                break
            time.sleep(0.25)
        wall_s = time.monotonic() - started
        time.sleep(2.0)  # the last deliveries' keys go
    finally:
        peak.stop()
        app.close()
        worker.terminate()
        worker.wait(timeout=60)
    after = int(client.info("memory")["used_memory"])
    left = census(client)
    left_total = sum(left.values()) or 1
    above = peak.peak - idle
    total = sum(peak.kinds.values()) or 1
    kinds = ", ".join(f"{kind} {bytes_ / total:.0%}" for kind, bytes_ in peak.kinds.most_common(6))
    print(
        f"{size:>9} {wall_s:>7.1f} {idle / 1e6:>7.1f} {peak.peak / 1e6:>8.1f} {above / size:>8.0f}"
        f" {max(0, after - idle) / size:>8.1f}  {kinds}"
        f"; left after: {', '.join(f'{k} {b / left_total:.0%}' for k, b in left.most_common(4))}",
        flush=True,
    )
    client.close()


def main() -> None:
    """Parse the sizes, run each, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000", help="comma-separated job sizes")
    parser.add_argument("--paced", action="store_true", help="wait for calls' answers, a few unanswered at most")
    parser.add_argument("--cli", action="store_true", help="send each job as a CSV file through dropq enrich")
    args = parser.parse_args()
    caller = f"paced, {PACED_CALLS} calls unanswered at most" if args.paced else "all parts at once"
    if args.cli:
        caller = "dropq enrich on a CSV (its own --max-in-flight default)"
    print(f"caller: {caller}; DROPQ_MAX_WAITING_CONTACTS {os.environ.get('DROPQ_MAX_WAITING_CONTACTS', 'default')}")
    print(f"{'contacts':>9} {'wall s':>7} {'idle MB':>7} {'peak MB':>8} {'B/c peak':>8} {'B/c after':>8}  at the peak")
    config = SandboxConfig(
        host="127.0.0.1", port=0, api_key="bench-memory-key", rate_limit=RATE,
        processing_min_s=0.05, processing_max_s=0.2, credits=100_000_000,
    )  # fmt: skip
    with (
        EmbeddedRedis() as redis_server,
        SandboxServer(config) as sandbox,
        tempfile.TemporaryDirectory(prefix="dropq-bench-memory-") as folder,
    ):
        for size in (int(s) for s in args.sizes.split(",")):
            run(size, redis_server, sandbox, Path(folder), paced=args.paced, cli=args.cli)


if __name__ == "__main__":
    main()
