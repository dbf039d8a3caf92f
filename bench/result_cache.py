"""Benchmark: what the result cache saves across jobs, and what an entry costs in its store.

Run from the repository root (PostgreSQL at DROPQ_TEST_POSTGRES_DSN, default the test database)::

    .venv/bin/python bench/result_cache.py                      # 10,000 rows, no cache / PostgreSQL / Redis
    .venv/bin/python bench/result_cache.py --rows 2000 --stores postgresql

On a private Redis and an in-process sandbox, a real worker (4 threads) enriches three files in a
row: a file of ``--rows`` distinct people (a third by email, the rest by name and company), the same
file again, then the same file with 30% of its rows other people. Once without a cache (the
baseline) and once per store (``DROPQ_CACHE_URL``: a schema of its own in PostgreSQL, a private
Redis with ``allkeys-lru``). Printed per run: POSTs, records sent, credits charged (the sandbox's,
net of refunds), rows answered from the cache, seconds; then each store's entries and bytes per
entry (PostgreSQL: the table with its index and TOAST; Redis: ``used_memory`` over its start).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from tests.support.pipeline import wait_for_job, worker_env  # noqa: E402
from tests.support.postgres import POSTGRES_DSN  # noqa: E402
from tests.support.processes import WorkerProcess, client_app  # noqa: E402

SCHEMA = "dropq_bench_cache"
PART = 1000


def people(rows: int, *, changed: float = 0.0) -> list[dict[str, Any]]:
    """``rows`` distinct people; the first ``changed`` share of every ten rows are other people."""
    contacts = []
    for i in range(rows):
        tag = f"{i}n" if (i % 10) < round(changed * 10) else str(i)
        if i % 3 == 0:
            row: dict[str, Any] = {"email": f"person{tag}@acme.example", "first_name": "Ada"}
        else:
            row = {"first_name": "Grace", "last_name": f"Person{tag}", "company": "Acme", "website": "acme.example"}
        row["custom_fields"] = {"crm_id": f"crm-{i}"}
        contacts.append(row)
    return contacts


def credits(sandbox: SandboxServer) -> int:
    """Credits the sandbox kept so far."""
    stats = sandbox.stats()
    return int(stats["credits_charged"]) - int(stats["credits_refunded"])


def run_files(redis_url: str, sandbox: SandboxServer, env: dict[str, str], label: str, rows: int) -> None:
    """The three files through one worker; one line each."""
    worker = WorkerProcess(env, name=f"cache-{label}", concurrency=4).start()
    app = client_app(redis_url)
    try:
        for name, contacts in (
            ("file", people(rows)),
            ("same file", people(rows)),
            ("30% changed", people(rows, changed=0.3)),
        ):
            before = sandbox.stats()
            paid = credits(sandbox)
            job_id = f"{label}-{name.replace(' ', '-').replace('%', '')}"
            started = time.monotonic()
            for offset in range(0, rows, PART):
                kwargs = {"contacts": contacts[offset : offset + PART], "job_id": job_id, "offset": offset,
                          "final": offset + PART >= rows, "destinations": ["stream"]}  # fmt: skip
                app.send_task("dropq.enrich", kwargs=kwargs, queue="dropq.produce")
            status = wait_for_job(redis_url, job_id, timeout_s=600)
            took = time.monotonic() - started
            after = sandbox.stats()
            posts = int(after["batches_received"]) - int(before["batches_received"])
            sent = int(after["records_received"]) - int(before["records_received"])
            print(f"{label:<11} {name:<12} {posts:>6} {sent:>8} {credits(sandbox) - paid:>8} {status.cached:>7}"
                  f" {status.credits_saved:>6} {took:>6.1f}", flush=True)  # fmt: skip
            assert status.accounted == status.received == rows, status
    finally:
        app.close()
        worker.stop()


def main() -> None:
    """Parse the options, run the baseline and each store, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="rows per file")
    parser.add_argument("--stores", default="postgresql,redis", help="comma list of postgresql, redis")
    args = parser.parse_args()
    started = time.monotonic()
    config = SandboxConfig(host="127.0.0.1", port=0, api_key="bench-cache-key", processing_min_s=0.2,
                           processing_max_s=0.5, credits=10_000_000)  # fmt: skip
    sizes: list[str] = []
    print(f"{'cache':<11} {'run':<12} {'POSTs':>6} {'records':>8} {'credits':>8} {'cached':>7} {'saved':>6} {'s':>6}")
    with (
        EmbeddedRedis() as state,
        EmbeddedRedis() as cache_redis,
        SandboxServer(config) as sandbox,
        tempfile.TemporaryDirectory(prefix="dropq-bench-cache-") as folder,
    ):
        base_env = worker_env(state.url, sandbox, Path(folder), DROPQ_DIGEST_SECRET="bench-secret")
        run_files(state.url, sandbox, base_env, "none", args.rows)
        for store in args.stores.split(","):
            redis.Redis.from_url(state.url).flushall()
            if store == "postgresql":
                with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
                    conn.execute(f"CREATE SCHEMA {SCHEMA}")
                url = f"{POSTGRES_DSN}?options=-csearch_path%3D{SCHEMA}"
            else:
                client = redis.Redis.from_url(cache_redis.url)
                client.config_set("maxmemory", "1gb")
                client.config_set("maxmemory-policy", "allkeys-lru")
                client.flushall()
                empty = int(client.info("memory")["used_memory"])
                url = cache_redis.url
            run_files(state.url, sandbox, {**base_env, "DROPQ_CACHE_URL": url}, store, args.rows)
            if store == "postgresql":
                with psycopg.connect(url) as conn:
                    count, size = conn.execute(
                        "SELECT count(*), pg_total_relation_size('dropq_result_cache') FROM dropq_result_cache"
                    ).fetchone()  # type: ignore[misc]
                with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            else:
                count = int(client.dbsize())
                size = int(client.info("memory")["used_memory"]) - empty
            per = size / max(1, count)
            sizes.append(f"{store:<11} {count:>8,} entries  {size / 1e6:>7.2f} MB  {per:>6.0f} B/entry"
                         f"  {1e9 / per / 1e6:>5.2f} M entries/GB")  # fmt: skip
    print()
    print("\n".join(sizes))
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
