"""Benchmark: how many requests a second the sandbox serves on one core, with 250-record batches.

Run it from the repository root::

    .venv/bin/python bench/sandbox_throughput.py            # 10 s, 4 client processes
    .venv/bin/python bench/sandbox_throughput.py --duration 5 --clients 3 --gets-per-post 3

It starts ``python -m dropq.dropcontact.sandbox`` in a subprocess pinned to one core
(``os.sched_setaffinity``; core 0), with the rate limit lifted and batches
processed in 0.05-0.2 s, then hammers it from client processes pinned to the
other cores: each loop POSTs a 250-record batch (distinct names, custom_fields
included) and then GETs its own recent request ids ``--gets-per-post`` times, so
answers are a mix of "not ready" and full 250-record results. It prints the
requests per second achieved, the statuses, the latencies, and the server's CPU
use over the run: if the server core is not saturated, the clients were the
limit and the sandbox's own ceiling is higher (the estimate is printed too).
The target is at least 200 requests a second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TARGET_RPS = 200
# Records per POST: the API's maximum, the heaviest case.
RECORDS_PER_POST = 250
# Distinct batches each client cycles through (so no single batch is re-enriched from a cache).
BODIES_PER_CLIENT = 8
SERVER_CORE = 0
FIRST_NAMES = ["ada", "jean", "marie", "paul", "lucie", "omar", "chen", "sofia", "hugo", "ines", "tom", "lea"]
LAST_NAMES = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau"]
JOBS = ["CEO", "Head of Sales", "Software Engineer", "Marketing Manager", "CFO", "HR Business Partner", ""]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bodies(client: int) -> list[bytes]:
    rng = random.Random(client)
    bodies = []
    for batch in range(BODIES_PER_CLIENT):
        records = [
            {
                "first_name": rng.choice(FIRST_NAMES),
                "last_name": rng.choice(LAST_NAMES),
                "company": f"Company {rng.randrange(5000)}",
                "job": rng.choice(JOBS),
                "custom_fields": {"row": f"{client}-{batch}-{index}", "source": "bench"},
            }
            for index in range(RECORDS_PER_POST)
        ]
        bodies.append(json.dumps({"data": records, "siren": batch % 2 == 0}).encode())
    return bodies


def _client(args: tuple[str, int, float, float, int]) -> tuple[Counter[str], list[float]]:
    url, client, start_at, stop_at, gets_per_post = args
    cores = sorted(os.sched_getaffinity(0) - {SERVER_CORE}) if hasattr(os, "sched_setaffinity") else []
    if cores:
        os.sched_setaffinity(0, {cores[client % len(cores)]})
    bodies = _bodies(client)
    headers = {"X-Access-Token": "bench", "Content-Type": "application/json"}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    request_ids: list[str] = []
    rng = random.Random(client)
    with requests.Session() as session:
        while time.time() < start_at:
            time.sleep(0.01)
        turn = 0
        while time.time() < stop_at:
            began = time.perf_counter()
            response = session.post(
                f"{url}/v1/enrich/all", data=bodies[turn % len(bodies)], headers=headers, timeout=30
            )
            latencies.append(time.perf_counter() - began)
            statuses[f"POST {response.status_code}"] += 1
            if response.status_code == 200:
                request_ids.append(response.json()["request_id"])
                del request_ids[:-20]
            for _ in range(gets_per_post):
                if not request_ids:
                    break
                began = time.perf_counter()
                got = session.get(f"{url}/v1/enrich/all/{rng.choice(request_ids)}", headers=headers, timeout=30)
                latencies.append(time.perf_counter() - began)
                ready = b'"data"' in got.content[:10]
                statuses[f"GET {got.status_code} {'ready' if ready else 'not ready'}"] += 1
            turn += 1
    return statuses, latencies


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Start the pinned server, run the clients, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--gets-per-post", type=int, default=3, help="GETs after each POST")
    options = parser.parse_args()

    port = _free_port()
    env = {
        **os.environ,
        "DROPQ_SANDBOX_PORT": str(port),
        "DROPQ_SANDBOX_API_KEY": "bench",
        "DROPQ_SANDBOX_RATE_LIMIT": "1000000",
        "DROPQ_SANDBOX_PROCESSING_MIN_S": "0.05",
        "DROPQ_SANDBOX_PROCESSING_MAX_S": "0.2",
        "DROPQ_SANDBOX_CREDITS": "1000000000",
    }
    pinned = hasattr(os, "sched_setaffinity") and SERVER_CORE in os.sched_getaffinity(0)
    server = subprocess.Popen(
        [sys.executable, "-m", "dropq.dropcontact.sandbox"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # Pinned before exec, so every thread the server starts inherits the single core.
        preexec_fn=(lambda: os.sched_setaffinity(0, {SERVER_CORE})) if pinned else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 15
        while True:
            try:
                requests.get(f"{url}/_sandbox/stats", timeout=1)
                break
            except requests.ConnectionError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the sandbox did not start") from None
                time.sleep(0.05)
        start_at = time.time() + 1.0
        stop_at = start_at + options.duration
        jobs = [(url, client, start_at, stop_at, options.gets_per_post) for client in range(options.clients)]
        with multiprocessing.get_context("spawn").Pool(options.clients) as pool:
            pending = pool.map_async(_client, jobs)
            while time.time() < start_at:
                time.sleep(0.005)
            cpu_before = _cpu_seconds(server.pid)
            results = pending.get(timeout=options.duration + 60)
            cpu_used = _cpu_seconds(server.pid) - cpu_before
        stats = requests.get(f"{url}/_sandbox/stats", timeout=5).json()
    finally:
        server.terminate()
        server.wait(10)

    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    for counts, times in results:
        statuses.update(counts)
        latencies.extend(times)
    latencies.sort()
    total = sum(statuses.values())
    rps = total / options.duration
    cpu_share = cpu_used / options.duration
    print(f"server pinned to core {SERVER_CORE}: {'yes' if pinned else 'no (not supported here)'}")
    print(f"clients: {options.clients} processes, {options.gets_per_post} GETs per 250-record POST")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    p50_ms, p99_ms = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(f"latency: p50 {p50_ms:.1f} ms, p99 {p99_ms:.1f} ms")
    print(f"sandbox saw: {stats['batches_received']} batches, {stats['records_received']} records, "
          f"{stats['batches_completed']} completed")  # fmt: skip
    print(f"server CPU: {cpu_share * 100:.0f}% of one core")
    if cpu_share > 0:
        print(f"estimated ceiling at 100% of one core: {rps / min(1.0, cpu_share):.0f} requests/s")
    verdict = "OK" if rps >= TARGET_RPS else "BELOW TARGET"
    print(f"throughput: {rps:.0f} requests/s (target {TARGET_RPS}) {verdict}")


if __name__ == "__main__":
    main()
