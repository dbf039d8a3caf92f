"""Soak: many seeded schedules of faults against real parts, one invariant checker over each outcome.

Run from the repository root::

    .venv/bin/python bench/soak.py --schedules 50 --seed 1
    .venv/bin/python bench/soak.py --schedules 1 --seed 17        # schedule 17 alone, again
    .venv/bin/python bench/soak.py --schedules 10 --records 300 --workers 2

Schedule ``k`` of a run has seed ``--seed + k``, so a schedule named in a
violation runs again alone with ``--seed S --schedules 1``. Each schedule
starts a private Redis (append-only, restarted on its files), real dropq
workers, the sandbox over HTTP, and sends one to three jobs (some in several
parts) while it SIGKILLs workers, restarts Redis, turns sandbox faults on and
off, pauses credits and resends jobs and parts; then ``tests/soak/invariants.py``
checks the outcome (see its docstring for the invariants).

Printed: one line per schedule, then the schedules run and their timings,
the faults injected by kind, the rows checked, and every violation with its
seed, invariant, job and numbers. The exit status is 1 when any invariant was
broken. The folder (output files, worker logs) of a schedule with violations
is kept and named. No contact data and no secret is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.soak.invariants import INVARIANTS  # noqa: E402
from tests.soak.schedule import ScheduleResult, SoakOptions, run_soak  # noqa: E402


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=50, help="schedules to run (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first schedule; the k-th gets seed + k")
    parser.add_argument("--records", type=int, default=None, help="rows per job (default: drawn, 200 to 600)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per schedule (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep every schedule's folder, not only failing ones")
    parser.add_argument("--notes", action="store_true", help="print the runner's notes (faults skipped, ...)")
    args = parser.parse_args(argv)
    if args.schedules < 1 or args.workers < 1 or args.concurrency < 1:
        parser.error("--schedules, --workers and --concurrency must be at least 1")
    if args.records is not None and args.records < 3:
        parser.error("--records must be at least 3")
    return args


def _line(result: ScheduleResult, show_notes: bool) -> str:
    plan = result.plan
    faults = ",".join(f"{kind}x{n}" if n > 1 else kind for kind, n in sorted(result.injected.items())) or "-"
    verdict = "ok" if not result.violations else f"{len(result.violations)} VIOLATIONS"
    text = (
        f"seed {plan.seed:>5}  jobs {len(plan.jobs)}  rows {plan.records:>4}  "
        f"webhooks {'on ' if plan.webhooks else 'off'}  {result.duration_s:5.1f} s (run {result.run_s:4.1f} s)  "
        f"{verdict:<14} faults {faults}"
    )
    if show_notes:
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
        text += "".join(f"\n        note: {note}" for note in [*result.notes, phases])
    return text


def _report(results: list[ScheduleResult], wall_s: float) -> int:
    durations = [r.duration_s for r in results]
    faults: Counter[str] = Counter()
    for result in results:
        faults.update(result.injected)
    violations = [v for r in results for v in r.violations]
    print()
    print(f"schedules run        {len(results)} in {wall_s:.0f} s")
    print(
        f"per schedule         mean {statistics.mean(durations):.1f} s, median {statistics.median(durations):.1f} s, "
        f"max {max(durations):.1f} s (jobs running: mean {statistics.mean(r.run_s for r in results):.1f} s)"
    )
    print(f"faults injected      {sum(faults.values())}")
    for kind, count in sorted(faults.items()):
        print(f"  {kind:<26} {count}")
    print(f"rows checked         {sum(r.rows_checked for r in results)} input rows, "
          f"{sum(r.figures['outcomes_read'] for r in results)} outcomes read back")  # fmt: skip
    figures: Counter[str] = Counter()
    for result in results:
        figures.update(result.figures)
    print(
        f"what faults caused   {figures['duplicate_batches_posted']} batches POSTed twice (ledgers: "
        f"{figures['resubmitted']} resubmitted), {figures['rate_limited']} answers 429, "
        f"{figures['webhooks_lost']} pushes lost, {figures['webhooks_duplicated']} duplicated, "
        f"{figures['http_repeats']} http and {figures['callback_repeats']} callback rows received again"
    )
    print(f"violations           {len(violations)} in {sum(1 for r in results if r.violations)} schedules")
    by_invariant = Counter(v.invariant for v in violations)
    for name in INVARIANTS:
        if by_invariant[name]:
            seeds = sorted({v.seed for v in violations if v.invariant == name})
            print(f"  {name:<26} {by_invariant[name]}  (seeds {', '.join(map(str, seeds))})")
    for result in results:
        if result.violations:
            print(f"\nseed {result.plan.seed} (kept in {result.artifacts}):")
            for violation in result.violations:
                print(f"  {violation}")
            for note in result.notes:
                print(f"  note: {note}")
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its figures; 1 when any invariant was broken."""
    args = _parse_args(argv)
    options = SoakOptions(
        records=args.records, workers=args.workers, concurrency=args.concurrency, keep_artifacts=args.keep
    )
    seeds = range(args.seed, args.seed + args.schedules)
    print(f"soak: {args.schedules} schedules from seed {args.seed}, {args.workers} workers x {args.concurrency}")
    started = time.monotonic()
    results = run_soak(seeds, options, on_result=lambda r: print(_line(r, args.notes), flush=True))
    return _report(results, time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
