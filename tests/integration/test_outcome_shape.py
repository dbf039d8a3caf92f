"""One outcome shape: what destinations receive and what ``dropq enrich`` writes as JSON Lines have the same keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dropq.workers.jobs.outcomes import OUTCOME_KEYS
from dropq.workers.pipeline.sink import UNUSABLE_EMAILS_REASON
from tests.integration.test_cli_enrich import run_dropq
from tests.support.pipeline import worker_env

pytestmark = pytest.mark.timeout(90)

# The CLI's JSON Lines row: the outcome's keys, with the input file's line after the index.
CLI_KEYS = ["job_id", "index", "line", "status", "reason", "best_email", "qualification", "record", "input", "source"]


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """A running worker on the private Redis and the sandbox; the CLI's environment to reach them."""
    # Every findable person is found (the sandbox's draws change with each submission's correlation ids).
    sandbox.configure(no_email_probability=0.0)
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=2)
    return env


def test_destinations_and_the_cli_write_the_documented_outcome_and_enriched_means_a_usable_email(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Every status through the jsonl destination and the CLI's output: the same keys; enriched rows have an email."""
    # Given: findable people, a record the pipeline rejects, a duplicate, an unreadable line, and a record
    # whose only address is on a disposable domain (the sandbox qualifies it `...@jetable`, in French by default)
    source = tmp_path / "leads.jsonl"
    source.write_text(
        "".join(
            json.dumps(obj) + "\n"
            for obj in (
                {"first_name": "Ada", "last_name": "Lovelace", "website": "acme.example", "crm": 1},
                {"first_name": "Alan", "crm": 2},
                {"first_name": "Ada", "last_name": "Lovelace", "website": "acme.example", "crm": 3},
                {"email": "someone@yopmail.com", "crm": 4},
                {"first_name": "Grace", "last_name": "Hopper", "website": "globex.example", "crm": 5},
            )
        )
        + "{not json\n"
    )
    output = tmp_path / "out.jsonl"
    # When
    done = run_dropq(
        ["enrich", str(source), "-o", str(output), "--job-id", "shape-1", "--destination", "jsonl", "-q"], cli_env
    )
    # Then
    assert done.returncode == 0, done.stderr
    delivered = [json.loads(line) for line in (tmp_path / "shape-1.jsonl").read_text().splitlines()]
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(delivered) == 5 and len(written) == 6
    for outcome in delivered:
        assert tuple(outcome)[: len(OUTCOME_KEYS)] == OUTCOME_KEYS, outcome
    for row in written:
        assert list(row) == CLI_KEYS, row
    by_index = {o["index"]: o for o in delivered}
    for row in written[:5]:
        twin = by_index[row["index"]]
        assert (row["status"], row["best_email"], row["qualification"]) == (
            twin["status"], twin["best_email"], twin["qualification"],
        )  # fmt: skip
    statuses = [row["status"] for row in written]
    assert statuses[1:3] == ["rejected", "duplicate"] and statuses[5] == "rejected"
    assert written[5]["index"] is None and written[5]["line"] == 6 and written[5]["job_id"] == "shape-1"
    # enriched means a usable email came back; the disposable-only record is not_found, and says why
    for item in (*delivered, *written):
        assert (item["status"] == "enriched") == bool(item["best_email"]), item
    disposable = written[3]
    assert disposable["status"] == "not_found" and disposable["record"]["email"], disposable
    assert disposable["reason"].startswith(f"line 4: {UNUSABLE_EMAILS_REASON}: ") and "@jetable" in disposable["reason"]
    assert "yopmail" not in disposable["reason"]
    assert statuses[0] == statuses[4] == "enriched"
    # Where each answer came from: the API for what was sent, nothing for what was not
    assert [row["source"] for row in written] == ["api", None, None, "api", "api", None]
