"""Peak memory of ``dropq enrich`` as the input grows: the CLI must stay flat (< 200 MB for a million rows).

For each size, writes a CSV of that many distinct contacts in a temporary
folder, runs ``dropq enrich FILE -o OUT --local`` as a subprocess on a fast
sandbox (a private Redis, one local worker), checks the output has one row per
input row, and prints the CLI process's own peak RSS (``ru_maxrss`` of the
process itself, read at its exit: the sandbox, Redis and workers it starts are
not counted), the wall time and the ratio between the largest and smallest size.

Run: ``.venv/bin/python bench/cli_memory.py [SIZE ...]`` (default ``100000 1000000``).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dropq.workers.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (100_000, 1_000_000)
# The target of DESIGN.md for a million rows.
TARGET_MB = 200
# A sandbox and limiter fast enough that a million rows take minutes, not hours.
FAST_ENV = {
    "DROPQ_SANDBOX_PROCESSING_MIN_S": "0.05",
    "DROPQ_SANDBOX_PROCESSING_MAX_S": "0.2",
    "DROPQ_SANDBOX_RATE_LIMIT": "1000",
    "DROPQ_SANDBOX_CREDITS": "100000000",
    "DROPQ_RATE_LIMIT": "1000",
    "DROPQ_POLL_FIRST_S": "0.3",
    "DROPQ_POLL_BASE_S": "0.3",
    "DROPQ_POLL_CAP_S": "1",
}
# Runs the CLI and writes its own peak RSS (kB) to the file named by argv[1] when it exits.
_WRAPPER = """
import atexit, resource, sys
path = sys.argv.pop(1)
atexit.register(lambda: open(path, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
sys.argv[0] = "dropq"
from dropq.cli import main
main()
"""


def write_contacts(path: Path, rows: int) -> None:
    """A CSV of ``rows`` distinct, valid contacts with a column the API does not know."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["First Name", "Last Name", "Company", "Company Website", "CRM Id"])
        for i in range(rows):
            writer.writerow(["Ada", f"Lovelace{i}", f"Acme {i % 97}", f"acme{i % 97}.example", f"crm-{i}"])


def measure(rows: int, folder: Path) -> tuple[float, float]:
    """Run the CLI on ``rows`` contacts; return (peak RSS in MB, wall seconds)."""
    source, output, rss_file = folder / f"in-{rows}.csv", folder / f"out-{rows}.csv", folder / f"rss-{rows}"
    write_contacts(source, rows)
    env = {k: v for k, v in os.environ.items() if k not in ("DROPCONTACT_API_KEY", "DROPCONTACT_API_URL")}
    # A private Redis for the run: nothing answers at this URL.
    env.update(FAST_ENV, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    args = [sys.executable, "-c", _WRAPPER, str(rss_file), "enrich", str(source), "-o", str(output), "--local"]
    started = time.monotonic()
    subprocess.run(args, cwd=ROOT, env=env, check=True)
    elapsed = time.monotonic() - started
    with output.open(encoding="utf-8", newline="") as handle:
        written = sum(1 for _ in handle) - 1
    if written != rows:
        raise SystemExit(f"the output has {written} rows for {rows} input rows")
    source.unlink()
    output.unlink()
    return int(rss_file.read_text()) / 1024, elapsed


def main() -> None:
    """Measure each size and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(DEFAULT_SIZES))
    sizes = parser.parse_args().sizes
    results = []
    with tempfile.TemporaryDirectory(prefix="dropq-bench-") as folder:
        for rows in sizes:
            peak_mb, elapsed = measure(rows, Path(folder))
            results.append((rows, peak_mb, elapsed))
            print(f"{rows:>10,} rows: peak RSS {peak_mb:6.1f} MB, wall {elapsed:7.1f} s ({rows / elapsed:,.0f} rows/s)")
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"peak RSS ratio {large[0]:,} / {small[0]:,} rows: {large[1] / small[1]:.2f}")
    verdict = "ok" if results[-1][1] < TARGET_MB else "OVER"
    print(f"target: < {TARGET_MB} MB at the largest size: {verdict}")


if __name__ == "__main__":
    main()
