"""``dropq demo`` and ``dropq enrich --local``: everything missing is started for the run, then stopped."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from dropq.workers.embedded import free_port
from dropq.workers.jobs.outcomes import STATUSES
from tests.integration.test_cli_enrich import run_dropq
from tests.support.pipeline import FAST_POLLING

pytestmark = pytest.mark.timeout(90)

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "contacts.csv"
# A quick sandbox for the run the CLI starts (the demo's own default is 0.5 to 2 s a batch).
FAST_SANDBOX = {"DROPQ_SANDBOX_PROCESSING_MIN_S": "0.05", "DROPQ_SANDBOX_PROCESSING_MAX_S": "0.2"}


def test_the_demo_runs_on_a_fresh_machine_and_writes_every_sample_row(tmp_path: Path) -> None:
    """No Redis, no key, no worker: the demo starts them all, enriches the sample, prints a summary and the path."""
    # Given: nothing answers at REDIS_URL and no API key is set
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", **FAST_SANDBOX, **FAST_POLLING}
    output = tmp_path / "demo.csv"
    # When
    done = run_dropq(["demo", "-o", str(output), "-q"], env)
    # Then
    assert done.returncode == 0, done.stderr
    assert "SYNTHETIC RESULTS" in done.stderr and "started a private Redis" in done.stderr
    assert "status" in done.stdout and f"output        {output}" in done.stdout
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        given = list(csv.DictReader(handle))
    with output.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(given) > 250
    for line, (row, source) in enumerate(zip(rows, given, strict=True), start=2):
        assert row["CRM Id"] == source["CRM Id"] and row["First Name"] == source["First Name"]
        assert row["status"] in STATUSES and row["status"] != "failed", (line, row)
        if row["status"] in ("rejected", "duplicate"):
            assert row["reason"].startswith(f"line {line}: "), row["reason"]
        if row["status"] == "enriched":
            assert row["email"] or row["other_emails"], row
    statuses = {row["status"] for row in rows}
    assert {"enriched", "rejected", "duplicate"} <= statuses
    # SIREN columns come with the demo (it asks for the registry fields).
    assert any(row["siret"] for row in rows)


def test_local_starts_only_the_workers_when_redis_and_a_key_are_there(
    redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """With a key and a Redis but no worker, --local starts workers only, and stops them after."""
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\nAcme,Doe\nGlobex,Roe\n")
    env = {"REDIS_URL": redis_url, "DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": sandbox.api_key,
           **FAST_POLLING}  # fmt: skip
    done = run_dropq(["enrich", str(source), "--local", "-q"], env)
    assert done.returncode == 0, done.stderr
    assert "local worker" in done.stderr
    assert "SYNTHETIC" not in done.stderr and "private Redis" not in done.stderr
    rows = list(csv.DictReader((tmp_path / "leads.enriched.csv").open(encoding="utf-8")))
    assert [r["Last Name"] for r in rows] == ["Doe", "Roe"]
    assert sandbox.stats()["batches_received"] == 1
