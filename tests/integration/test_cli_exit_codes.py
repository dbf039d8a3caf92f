"""What a script reads from ``dropq enrich``: its exit status and the ``--summary-json`` file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli_enrich import run_dropq
from tests.support.pipeline import worker_env

pytestmark = pytest.mark.timeout(90)

_COUNTS = ("enriched", "not_found", "rejected", "duplicates", "failed")


def _leads(tmp_path: Path) -> Path:
    """Three good rows, one the pipeline rejects (no identifier), one duplicate, one unreadable."""
    source = tmp_path / "leads.csv"
    source.write_text(
        "First Name,Last Name,Website\n"
        "Ada,Lovelace,acme.example\n"
        "Alan,Turing,globex.example\n"
        "Alan,,\n"
        "Ada,Lovelace,acme.example\n"
        "Grace,Hopper,initech.example,one too many\n"
        "Linus,Torvalds,initech.example\n"
    )
    return source


def _summary(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """A running worker on the private Redis and the sandbox; the CLI's environment to reach them."""
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=2)
    return env


def test_a_run_without_failed_rows_exits_0_and_its_summary_adds_up(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Rejected and duplicate rows do not fail a run by default; the summary counts every row once."""
    summary_path = tmp_path / "run" / "summary.json"
    output = tmp_path / "out.csv"
    done = run_dropq(
        ["enrich", str(_leads(tmp_path)), "-o", str(output), "-q", "--summary-json", str(summary_path)], cli_env
    )
    assert done.returncode == 0, done.stderr
    summary = _summary(summary_path)
    assert summary["state"] == "finished" and summary["exit_status"] == 0
    assert summary["received"] == 6 == sum(summary[key] for key in _COUNTS)
    assert (summary["rejected"], summary["duplicates"], summary["failed"]) == (2, 1, 0)
    assert summary["unreadable"] == 1 and summary["sent"] == 5
    assert summary["enriched"] + summary["not_found"] == 3
    assert summary["output"] == str(output) and summary["fail_on"] == ["failed"]
    assert isinstance(summary["credits_used"], int) and summary["duration_s"] > 0
    assert summary["job_id"].startswith("enrich-")


@pytest.mark.parametrize(("fail_on", "status"), [("rejected", 3), ("duplicate,failed", 3), ("failed", 0), ("none", 0)])
def test_fail_on_names_the_statuses_that_make_the_run_exit_3(
    cli_env: dict[str, str], tmp_path: Path, fail_on: str, status: int
) -> None:
    """--fail-on rejected (or duplicate) turns those rows into exit status 3, said on stderr and in the summary."""
    summary_path = tmp_path / "summary.json"
    done = run_dropq(
        ["enrich", str(_leads(tmp_path)), "-q", "--fail-on", fail_on, "--summary-json", str(summary_path)], cli_env
    )
    assert done.returncode == status, done.stderr
    assert _summary(summary_path)["exit_status"] == status
    if status:
        assert "exit status 3: " in done.stderr and f"--fail-on {fail_on}" in done.stderr


def test_rows_that_failed_exit_3_by_default(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> None:
    """Every record failed (the workers' token is refused): exit 3, and the summary says failed = rows."""
    # Given: the CLI's token is good, the workers' is not
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker({**env, "DROPCONTACT_API_KEY": "not-the-sandbox-key"}, concurrency=2)
    source = tmp_path / "five.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(5)))
    summary_path = tmp_path / "summary.json"
    # When
    done = run_dropq(["enrich", str(source), "-q", "--summary-json", str(summary_path)], env)
    # Then
    assert done.returncode == 3, done.stderr
    assert "exit status 3: 5 failed" in done.stderr
    summary = _summary(summary_path)
    assert (summary["received"], summary["failed"], summary["exit_status"]) == (5, 5, 3)


def test_an_unknown_fail_on_status_is_a_usage_error(tmp_path: Path) -> None:
    """--fail-on with a name that is not a status: exit 2 before anything runs, the valid names listed."""
    done = run_dropq(["enrich", str(_leads(tmp_path)), "--fail-on", "failed,bogus"], {})
    assert done.returncode == 2
    assert "'bogus' is not a row status" in done.stderr and "not_found" in done.stderr


def test_a_run_that_cannot_start_writes_a_summary_with_its_error(tmp_path: Path) -> None:
    """No Redis: exit 1, and the summary says error with the message (a script needs no stderr parsing)."""
    summary_path = tmp_path / "summary.json"
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "DROPCONTACT_API_KEY": "k"}
    done = run_dropq(["enrich", str(_leads(tmp_path)), "--summary-json", str(summary_path)], env)
    assert done.returncode == 1, done.stderr
    summary = _summary(summary_path)
    assert (summary["state"], summary["exit_status"]) == ("error", 1)
    assert "Redis is not reachable" in summary["error"]
    assert "received" not in summary


def test_help_documents_the_exit_statuses() -> None:
    """`dropq enrich --help` lists 0, 1, 2, 3 and 130."""
    done = run_dropq(["enrich", "--help"], {})
    assert done.returncode == 0
    text = done.stdout
    assert "Exit status:" in text and "--fail-on" in text and "--summary-json" in text
    for status in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n    {status}" in text, status
