"""Benchmark: a single contact sent into a running backfill, lanes against first-come first-served.

Run from the repository root::

    .venv/bin/python bench/backfill.py                      # 300,000-contact backfill, twice (about 4 minutes)
    .venv/bin/python bench/backfill.py --records 100000

On a private Redis and a sandbox that enforces 60 requests a second strictly (results ready
``--api-s`` after each POST; ``--sandbox-process`` runs it as a process of its own, so that this
busy process cannot stamp its arrivals late), ``dropq worker`` with its defaults gets a backfill
of ``--records`` contacts through the task API, in parts of 25,000; ``--lone-after`` seconds
after its first part, a single-contact job. Twice: as the baseline (the behaviour before lanes
and early polls: the lone job ``priority="bulk"``, ``DROPQ_POLL_EARLY=false``,
``DROPQ_COALESCE_LINGER_S=0``) and with the defaults (``--env`` changes them). Printed per run:
the lone job's time from its send to its finish, the backfill's contacts a second and its share
of 60 requests a second (accepted requests over its run; and "steady": from its first POST to its last,
sampled every second, without the start and the tail of GETs that the API's processing time imposes),
429s, GETs per batch. Targets (issue 13): the lone job
within 20 s, the backfill at 0.9 of 60 req/s or more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.latency import DropqWorker  # noqa: E402
from bench.sandbox_process import SandboxProcess  # noqa: E402
from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from dropq.workers.jobs.ledger import JobLedger  # noqa: E402
from tests.support.contacts import make_contacts  # noqa: E402
from tests.support.pipeline import worker_env  # noqa: E402
from tests.support.processes import client_app  # noqa: E402

PART = 25_000
Sandbox = SandboxServer | SandboxProcess
RATE = 60


def _parts(records: int) -> list[dict[str, object]]:
    parts = []
    for offset in range(0, records, PART):
        contacts = make_contacts(min(PART, records - offset), seed=offset)
        for i, contact in enumerate(contacts):
            # Distinct people, so that the whole backfill is sent.
            contact["last_name"] = f"{contact.get('last_name', 'x')}{offset + i}"
        parts.append({"contacts": contacts, "job_id": "backfill", "offset": offset, "final": offset + PART >= records})
    return parts


def _gets(stats: dict[str, object]) -> int:
    """The GETs the sandbox answered, ready or not."""
    return sum(int(str(stats[name])) for name in ("polls_not_ready", "polls_in_progress", "polls_ready"))


class Timeline:
    """The sandbox's requests over time, sampled every second: POSTs, GETs and 429s a second, batches in flight."""

    def __init__(self, sandbox: Sandbox, client: redis.Redis) -> None:
        self.sandbox = sandbox
        self.ledger = JobLedger(client, ttl_s=3600)
        self.samples: list[tuple[float, int, int, int, int, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(1.0):
            stats = self.sandbox.stats()
            gets = _gets(stats)
            job = self.ledger.read("backfill")
            self.samples.append((
                time.monotonic() - started, int(str(stats["batches_received"])), gets,
                int(str(stats["rate_limited"])), int(str(stats["batches_completed"])),
                job.received if job else 0, job.batches - job.batches_submitted if job else 0,
                job.batches_submitted - job.batches_done if job else 0,
            ))  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def steady_share(self) -> float:
        """The share of 60 req/s from the first POST to the last one (the tail of GETs alone left out)."""
        posted = [s for s in self.samples if s[1] > 0]
        if len(posted) < 2:
            return 0.0
        last = next(s for s in posted if s[1] == posted[-1][1])
        first = posted[0]
        span = last[0] - first[0]
        return (last[1] + last[2] - first[1] - first[2]) / span / RATE if span > 0 else 0.0

    def print(self, every_s: int) -> None:
        """A line per ``every_s`` seconds: POST/s, GET/s, both over 60, 429s, batches the API is processing;
        the backfill's contacts received, its batches not yet POSTed, and POSTed but not done."""
        print(f"  {'t s':>5} {'POST/s':>7} {'GET/s':>6} {'/60':>5} {'429':>4} {'api':>5} {'recv k':>6}"
              f" {'to POST':>7} {'to GET':>6}")  # fmt: skip
        for before, after in zip(self.samples[::every_s], self.samples[every_s::every_s], strict=False):
            span = after[0] - before[0]
            posts, gets = (after[1] - before[1]) / span, (after[2] - before[2]) / span
            print(
                f"  {after[0]:>5.0f} {posts:>7.1f} {gets:>6.1f} {(posts + gets) / RATE:>5.2f}"
                f" {after[3] - before[3]:>4} {after[1] - after[4]:>5} {after[5] / 1000:>6.0f}"
                f" {after[6]:>7} {after[7]:>6}"
            )


def run(name: str, baseline: bool, args: argparse.Namespace, redis_server: EmbeddedRedis, sandbox: Sandbox,
        folder: Path, parts: list[dict[str, object]]) -> str:  # fmt: skip
    """One backfill and one lone contact through a fresh ``dropq worker``; the printed line."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushall()
    sandbox.reset(processing_min_s=args.api_s, processing_max_s=max(args.api_s, args.api_max_s or args.api_s))
    extra = {"DROPQ_LOG_LEVEL": "warning", "DROPQ_RATE_LIMIT": str(RATE)}
    if baseline:
        extra |= {"DROPQ_POLL_EARLY": "false", "DROPQ_COALESCE_LINGER_S": "0"}
    else:
        extra |= dict(pair.split("=", 1) for pair in args.env.split(",") if pair)
    env = worker_env(redis_server.url, sandbox, folder, **extra)
    for variable in ("DROPQ_POLL_FIRST_S", "DROPQ_POLL_BASE_S", "DROPQ_POLL_CAP_S", "DROPQ_POLL_MAX_AGE_S"):
        env.pop(variable)
    worker = DropqWorker(env, folder / f"{name}.log").start()
    app = client_app(redis_server.url)
    ledger = JobLedger(client, ttl_s=3600)
    timeline = Timeline(sandbox, client)
    try:
        started = time.time()
        sender = threading.Thread(
            target=lambda: [app.send_task("dropq.enrich", kwargs=part).get(timeout=3600) for part in parts],
            daemon=True,
        )
        sender.start()
        time.sleep(args.lone_after)
        lone_sent = time.time()
        lone_kwargs: dict[str, object] = {"contacts": make_contacts(1, seed=999_999), "job_id": "lone"}
        if baseline:
            lone_kwargs["priority"] = "bulk"
        app.send_task("dropq.enrich", kwargs=lone_kwargs)
        lone_s = backfill_s = None
        deadline = time.monotonic() + args.timeout
        while (lone_s is None or backfill_s is None) and time.monotonic() < deadline:
            time.sleep(0.2)
            lone, backfill = ledger.read("lone"), ledger.read("backfill")
            if lone_s is None and lone is not None and lone.is_finished:
                lone_s = lone.finished_ms / 1000 - lone_sent
            if backfill_s is None and backfill is not None and backfill.is_finished:
                backfill_s = backfill.finished_ms / 1000 - started
    finally:
        timeline.stop()
        app.close()
        worker.stop()
        client.close()
    if args.timeline:
        timeline.print(args.timeline)
    if lone_s is None or backfill_s is None:
        return f"{name:<30} did not finish within {args.timeout:.0f} s"
    stats = sandbox.stats()
    accepted = sum(int(n) for n in stats["requests"].values()) - int(str(stats["rate_limited"]))  # type: ignore[union-attr]
    share = accepted / backfill_s / RATE
    gets = _gets(stats)
    gets_per_batch = gets / max(1, int(str(stats["batches_received"])))
    return (
        f"{name:<30} {lone_s:>7.1f} {args.records / backfill_s:>10.0f} {share:>6.2f} {timeline.steady_share():>6.2f}"
        f" {int(str(stats['rate_limited'])):>5} {backfill_s:>7.1f} {gets_per_batch:>5.2f}"
    )


def main() -> None:
    """Parse the options, run the baseline and the defaults, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300_000, help="contacts in the backfill")
    parser.add_argument("--lone-after", type=float, default=5.0, help="when the lone contact is sent, seconds")
    parser.add_argument("--api-s", type=float, default=2.0, help="the API's processing time")
    parser.add_argument(
        "--api-max-s", type=float, default=None, help="processing times spread from --api-s up to this (uniformly)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="the most a run may take, seconds")
    parser.add_argument("--env", default="", help="settings for the defaults run, NAME=VALUE,NAME=VALUE")
    parser.add_argument("--timeline", type=int, default=0, help="print the requests over time, a line per N seconds")
    parser.add_argument("--no-baseline", action="store_true", help="only the defaults run")
    parser.add_argument(
        "--sandbox-process", action="store_true",
        help="run the sandbox as its own process (dropq sandbox), not in this busy one",
    )  # fmt: skip
    args = parser.parse_args()
    parts = _parts(args.records)
    # Credits for both runs: a backfill that runs out waits for credits (the pause), which is not measured here.
    config = SandboxConfig(host="127.0.0.1", port=0, api_key="bench-backfill-key", credits=3 * args.records + 10_000)
    print(
        f"{args.records:,} contacts backfill, a lone contact {args.lone_after:g} s in,"
        f" API {args.api_s:g}{f'-{args.api_max_s:g}' if args.api_max_s else ''} s",
        flush=True,
    )
    header = ("run", "lone s", "contacts/s", "/60", "steady", "429s", "wall s", "GET/b")
    print(f"{header[0]:<30} " + " ".join(f"{h:>{w}}" for h, w in zip(header[1:], (7, 10, 6, 6, 5, 7, 5), strict=True)))
    with (
        EmbeddedRedis() as redis_server,
        tempfile.TemporaryDirectory(prefix="dropq-bench-backfill-") as folder,
        SandboxProcess(config, Path(folder) / "sandbox.log")
        if args.sandbox_process
        else SandboxServer(config) as sandbox,
    ):
        runs = (("first come, fixed polls (base)", True), ("lanes, early polls (defaults)", False))
        for name, baseline in runs[1:] if args.no_baseline else runs:
            print(run(name, baseline, args, redis_server, sandbox, Path(folder), parts), flush=True)


if __name__ == "__main__":
    main()
