"""Benchmark: Redis bytes per identity of a job's de-duplication digests, compact buckets against one hash.

Run from the repository root::

    .venv/bin/python bench/seen_memory.py                     # 100k, 1M and 3M identities
    .venv/bin/python bench/seen_memory.py --sizes 300000

On a private Redis with its default settings, each size is written twice in windows of 250, as
the produce stage does: the previous release's layout (one hash per job, field = 32 hex
characters of the HMAC, value = first index, ``HSETNX``) as the baseline, then today's
``SeenRecords`` (12 bytes of the HMAC in up to 65,536 small hashes). Printed: ``used_memory``
above the empty Redis, per identity, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from dropq.workers.embedded import EmbeddedRedis  # noqa: E402
from dropq.workers.jobs.seen import SeenRecords, forget  # noqa: E402

KEY = b"bench-digest-key"
WINDOW = 250


def _baseline(client: redis.Redis, size: int) -> None:
    """The previous release's layout: one hash per job."""
    for start in range(0, size, WINDOW):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(size, start + WINDOW)):
            digest = hmac.new(KEY, f"email:person{i}@acme.example".encode(), hashlib.sha256).hexdigest()[:32]
            pipe.hsetnx("old:job-seen:bench", digest, i)
        pipe.execute()


def _compact(client: redis.Redis, size: int) -> None:
    seen = SeenRecords(client, 3600, KEY)
    for start in range(0, size, WINDOW):
        seen.first_indexes(
            "bench", [(f"email:person{i}@acme.example", i) for i in range(start, min(size, start + WINDOW))]
        )


def main() -> None:
    """Write each size in both layouts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000", help="comma-separated identity counts")
    args = parser.parse_args()
    print(f"{'identities':>10} {'one hash B/id':>13} {'buckets B/id':>12} {'ratio':>6} {'write s':>8}")
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        for size in (int(s) for s in args.sizes.split(",")):
            client.flushall()
            empty = int(client.info("memory")["used_memory"])
            _baseline(client, size)
            old = int(client.info("memory")["used_memory"]) - empty
            client.flushall()
            empty = int(client.info("memory")["used_memory"])
            started = time.monotonic()
            _compact(client, size)
            took = time.monotonic() - started
            new = int(client.info("memory")["used_memory"]) - empty
            forget(client, "bench")
            print(f"{size:>10} {old / size:>13.1f} {new / size:>12.1f} {new / old:>6.2f} {took:>8.1f}", flush=True)
        client.close()


if __name__ == "__main__":
    main()
