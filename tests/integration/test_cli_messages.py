"""Messages that tell the truth: each case a person ran into, replayed through the command as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dropq.workers.embedded import free_port
from tests.integration.test_cli_enrich import _SCRUBBED, run_dropq
from tests.support.pipeline import worker_env
from tests.support.processes import ROOT

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """A running worker on the private Redis and the sandbox; the CLI's environment to reach them."""
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=2)
    return env


def test_the_demo_with_a_key_set_says_why_it_still_runs_on_the_sandbox(tmp_path: Path) -> None:
    """DROPCONTACT_API_KEY set: the banner says the demo uses the sandbox on purpose, never that the key is unset."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env |= {"DROPCONTACT_API_KEY": "x", "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "dropq", "demo", "-o", str(tmp_path / "demo.csv"), "-q"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "started the sandbox" not in log.read_text():
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)  # the banner is all this test is about
        process.wait(timeout=45)
    text = log.read_text()
    assert "even though DROPCONTACT_API_KEY is set" in text and "dropq demo --api" in text, text
    assert "is not set" not in text


def test_status_with_redis_down_names_the_variable_and_no_option_it_lacks() -> None:
    """`dropq status` has no --local: the message says to start Redis or point REDIS_URL at the workers' one."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_dropq(["status", "some-job"], {"REDIS_URL": url})
    assert done.returncode == 1
    assert f"Redis is not reachable at {url}" in done.stderr and "REDIS_URL" in done.stderr
    assert "--local to" not in done.stderr


def test_a_file_with_no_api_column_is_warned_about_before_anything_is_sent(
    cli_env: dict[str, str], sandbox: Any, tmp_path: Path
) -> None:
    """Headers `foo,bar`: one warning with the --map syntax, nothing reaches the API, every row rejected."""
    source = tmp_path / "odd.csv"
    source.write_text("foo,bar\nAda,Acme\nAlan,Globex\n")
    output = tmp_path / "out.csv"
    done = run_dropq(["enrich", str(source), "-o", str(output), "-q"], cli_env)
    assert done.returncode == 0, done.stderr
    warning = next(line for line in done.stderr.splitlines() if line.startswith("warning: no column"))
    assert "('foo', 'bar')" in warning and '--map "foo=first_name" --map "bar=company"' in warning
    assert "company" in warning and "every row will come back rejected" in warning
    assert done.stderr.index("warning: no column") < done.stderr.index("done in")
    assert sandbox.stats()["batches_received"] == 0
    assert output.read_text().count("rejected") == 2


def test_the_same_file_with_map_is_sent(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The warning's own advice works: with --map the rows go, and the warning is gone."""
    source = tmp_path / "odd.csv"
    source.write_text("foo,bar,baz\nAda,Lovelace,acme.example\n")
    done = run_dropq(
        ["enrich", str(source), "-q", "--map", "foo=first_name", "--map", "bar=last_name", "--map", "baz=website"],
        cli_env,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: no column" not in done.stderr
    assert "rejected" not in (tmp_path / "odd.enriched.csv").read_text()


@pytest.mark.parametrize(("name", "text"), [("header.csv", "First Name,Company\n"), ("blank.jsonl", "\n")])
def test_a_file_of_no_rows_is_said_plainly(cli_env: dict[str, str], tmp_path: Path, name: str, text: str) -> None:
    """A header-only CSV: exit 0, 'no rows after its header', an output of the header only, a summary of zeros."""
    source = tmp_path / name
    source.write_text(text)
    summary_path = tmp_path / "summary.json"
    done = run_dropq(["enrich", str(source), "-q", "--summary-json", str(summary_path)], cli_env)
    if name.endswith(".jsonl"):  # a JSON Lines file of blank lines is empty, as an empty CSV is
        assert done.returncode == 2, done.stderr
        assert "the file is empty" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    assert "has no rows after its header, so nothing was sent" in done.stderr and "0 rows ()" not in done.stderr
    output = tmp_path / "header.enriched.csv"
    assert output.read_text().splitlines()[0].startswith("First Name,Company,email,")
    assert len(output.read_text().splitlines()) == 1
    summary = json.loads(summary_path.read_text())
    assert summary["received"] == 0 and summary["exit_status"] == 0


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl"])
def test_an_empty_file_is_refused_whatever_its_format(tmp_path: Path, name: str) -> None:
    """Zero bytes: exit 2 and 'the file is empty', for CSV and JSON Lines alike (no job, nothing checked)."""
    source = tmp_path / name
    source.write_bytes(b"")
    done = run_dropq(["enrich", str(source)], {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert done.returncode == 2, done.stderr
    assert f"{source}: the file is empty" in done.stderr


def test_credits_local_prints_one_line_not_a_banner() -> None:
    """`dropq credits --local` without a key: one line on stdout that says the number is synthetic; stderr quiet."""
    done = run_dropq(["credits", "--local"], {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "100,000 credits left (synthetic: the balance of a sandbox started for this command)"
    assert "=====" not in done.stderr and "SYNTHETIC RESULTS" not in done.stderr


def test_the_credit_check_tries_a_transient_error_again(sandbox: Any) -> None:
    """A 503 on the first credit check: tried again after a pause (said on stderr), then the balance."""
    # Given: every answer is a 503 until the sandbox has seen the first one
    sandbox.configure(error_probability=1.0, error_statuses="503", credits=4321)

    def heal() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not sandbox.stats()["faults"]:
            time.sleep(0.01)
        sandbox.configure(error_probability=0.0)

    healer = threading.Thread(target=heal)
    healer.start()
    env = {"DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": sandbox.api_key}
    # When
    done = run_dropq(["credits"], env)
    healer.join()
    # Then
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4,321 credits left"
    assert "the credit check got" in done.stderr and "503" in done.stderr and "trying again in" in done.stderr


def test_the_credit_check_gives_up_after_a_few_tries(sandbox: Any) -> None:
    """503 every time: four tries, then exit 1 with the count of tries and the last error."""
    sandbox.configure(error_probability=1.0, error_statuses="503")
    env = {"DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": sandbox.api_key}
    done = run_dropq(["credits"], env)
    assert done.returncode == 1, done.stderr
    assert "did not answer the credit check after 4 tries" in done.stderr
    assert done.stderr.count("trying again in") == 3
    assert sandbox.stats()["faults"].get("503", 0) >= 4
