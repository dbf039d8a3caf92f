"""A small soak: three seeded fault schedules on real parts, and not one invariant broken.

The seeds were picked so that between them the schedules SIGKILL workers and a
pool child, restart Redis (by crash and by SHUTDOWN), lose answers, answer
5xx and slowly, pause credits, lose webhook pushes' answers, and resend jobs
and parts while they run and after they finished. ``bench/soak.py`` runs the
same schedules, and many more (``--seed 519 --schedules 1`` runs the first alone).
"""

from __future__ import annotations

import pytest

from tests.soak.plan import plan_schedule
from tests.soak.schedule import SoakOptions, run_soak

SEEDS = (519, 474, 110)
ROWS = 300
OPTIONS = SoakOptions(records=ROWS, finish_timeout_s=20)
# Faults the three plans must hold between them, so that a change of the planner cannot make this test tame.
EXPECTED_KINDS = {"worker_kill", "child_kill", "redis_restart", "lost_answers", "api_errors", "credit_pause"}


def test_the_seeds_still_plan_the_faults_this_test_is_about() -> None:
    """The planner, for these seeds, still draws kills, Redis restarts and sandbox faults early in the job."""
    kinds = set()
    for seed in SEEDS:
        plan = plan_schedule(seed, records=ROWS, workers=OPTIONS.workers, max_faults=OPTIONS.max_faults)
        kinds |= {e.kind for e in plan.events} | {w.kind for w in plan.windows}
    assert kinds >= EXPECTED_KINDS


@pytest.mark.slow
@pytest.mark.timeout(110)
def test_small_fault_schedules_break_no_invariant() -> None:
    """Three schedules of 300-row jobs through kills, restarts and API faults: every invariant holds."""
    # When
    results = run_soak(SEEDS, OPTIONS)
    # Then
    violations = [str(v) for r in results for v in r.violations]
    notes = [f"seed {r.plan.seed}: {note}" for r in results if r.violations for note in r.notes]
    assert violations == [], "\n".join(violations + notes)
    assert all(sum(r.injected.values()) >= 2 for r in results), [dict(r.injected) for r in results]
    assert sum(r.rows_checked for r in results) == ROWS * sum(len(r.plan.jobs) for r in results)
