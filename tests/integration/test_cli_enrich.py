"""``dropq enrich`` as a person runs it: a subprocess against a real worker, Redis and the sandbox."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.pipeline import worker_env
from tests.support.processes import ROOT

# Every test here drives a real job end to end; none should take long.
pytestmark = pytest.mark.timeout(90)

# Variables of the developer's shell that would change what the CLI talks to.
_SCRUBBED = ("DROPCONTACT_API_KEY", "DROPCONTACT_API_URL", "REDIS_URL", "CELERY_BROKER_URL", "DROPQ_DESTINATIONS")


def run_dropq(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``dropq ARGS`` (``python -m dropq``) and return its exit status and output."""
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED} | env
    return subprocess.run(
        [sys.executable, "-m", "dropq", *args],
        cwd=ROOT, env=full_env, input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip


@pytest.fixture
def cli_env(redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path) -> dict[str, str]:
    """A running worker on the private Redis and the sandbox; the CLI's environment to reach them."""
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=2)
    return env


def _read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def _outcomes_seen_by_destination(tmp_path: Path, job_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / f"{job_id}.jsonl").read_text().splitlines()]


def test_a_csv_comes_back_row_by_row_with_its_columns_status_and_reason(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Odd headers, unknown columns, an unreadable row and a duplicate: one output row per input row, in order."""
    # Given: semicolons, a BOM, headers in several styles, two columns the API does not know
    source = tmp_path / "leads.csv"
    lines = [
        "Prénom;LAST NAME;Company Website;E-mail;CRM Id;Secret Note",
        "Ada;Lovelace;acme.example;;c-1;do not send",  # line 2: valid
        "Alan;Turing;;;c-2;no identifier",  # line 3: rejected by the pipeline
        "Grace;Hopper;globex.example;;c-3;x;one field too many",  # line 4: unreadable
        "Ada;Lovelace;acme.example;;c-4;same person again",  # line 5: duplicate of line 2
        "Linus;Torvalds;;linus@initech.example;c-5;",  # line 6: valid
    ]
    source.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n")
    output = tmp_path / "out" / "enriched.csv"
    # When
    done = run_dropq(
        [
            "enrich", str(source), "-o", str(output), "--job-id", "cli-csv", "--destination", "jsonl",
            "--part-size", "2", "-q",
        ],
        cli_env,
    )  # fmt: skip
    # Then
    assert done.returncode == 0, done.stderr
    assert "line 4: unreadable row" in done.stderr
    rows = _read_csv(output, delimiter=";")
    assert [r["CRM Id"] for r in rows] == ["c-1", "c-2", "c-3", "c-4", "c-5"]
    assert list(rows[0])[:6] == ["Prénom", "LAST NAME", "Company Website", "E-mail", "CRM Id", "Secret Note"]
    assert [r["status"] for r in rows][1:4] == ["rejected", "rejected", "duplicate"]
    assert rows[0]["status"] in ("enriched", "not_found") and rows[4]["status"] in ("enriched", "not_found")
    assert rows[1]["reason"].startswith("line 3: needs a company")
    assert rows[2]["reason"].startswith("line 4: unreadable row: 7 fields where the header has 6")
    assert rows[3]["reason"].startswith("line 5: duplicate of line 2")
    assert rows[2]["Prénom"] == "Grace" and rows[0]["Secret Note"] == "do not send"
    # Unknown columns never reach the pipeline (nor the API): what it received holds API fields only.
    seen = _outcomes_seen_by_destination(tmp_path, "cli-csv")
    assert len(seen) == 4
    for outcome in seen:
        sent = json.dumps(outcome["input"])
        assert "c-" not in sent and "send" not in sent and "Secret" not in sent


def test_json_lines_in_and_out_carry_full_records(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A JSONL input with a bad line gives a JSONL output: line, input, status, reason and the full record."""
    source = tmp_path / "leads.jsonl"
    source.write_text(
        '{"first_name": "Ada", "last_name": "Lovelace", "website": "acme.example", "crm": 1}\n'
        "{not json\n"
        "\n"
        '["a", "list"]\n'
        '{"First Name": "Alan", "Company": "Globex", "crm": 2}\n'
    )
    output = tmp_path / "enriched.jsonl"
    done = run_dropq(["enrich", str(source), "-o", str(output), "-q"], cli_env)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 4, 5]
    assert [r["status"] for r in rows][1:3] == ["rejected", "rejected"]
    assert rows[1]["reason"].startswith("line 2: unreadable row: not valid JSON")
    assert rows[2]["reason"] == "line 4: unreadable row: a JSON object was expected, got list"
    assert rows[0]["input"]["crm"] == 1 and rows[3]["input"]["First Name"] == "Alan"
    for row in (rows[0], rows[3]):
        assert row["status"] in ("enriched", "not_found")
        assert row["record"]["custom_fields"]["dropq_ref"].split(".")[0] in ("0", "1")


def test_standard_input_is_read_and_the_output_goes_to_standard_output(cli_env: dict[str, str]) -> None:
    """``dropq enrich -`` reads stdin and, without -o, writes the CSV on stdout (messages on stderr)."""
    data = b"Full Name,Company,Notes\nAda Lovelace,Acme,n1\nNobody,,n2\n"
    done = run_dropq(["enrich", "-", "-q"], cli_env, stdin=data)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["Notes"] for r in rows] == ["n1", "n2"]
    assert rows[1]["status"] == "rejected" and rows[1]["reason"].startswith("line 3:")


def test_no_wait_returns_the_job_id_and_status_reports_it(cli_env: dict[str, str], tmp_path: Path) -> None:
    """--no-wait prints the job id after sending; `dropq status --json --wait` then sees it finished and accounted."""
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(30)) + ",Nobody\n")
    sent = run_dropq(["enrich", str(source), "--no-wait"], cli_env)
    assert sent.returncode == 0, sent.stderr
    job_id = sent.stdout.strip()
    assert job_id.startswith("enrich-")
    status = run_dropq(["status", job_id, "--json", "--wait"], cli_env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["job"]["state"] == "finished"
    assert report["job"]["received"] == 31 and report["job"]["rejected"] == 1
    assert report["job"]["is_fully_accounted"] is True
    assert {"balance", "paused"} <= set(report["credits"]) and "adaptive_factor" in report["limiter"]
    text = run_dropq(["status", job_id], cli_env)
    assert "accounted" in text.stdout and "31 of 31 ok" in text.stdout


def _deliver_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_detaches_and_the_same_command_with_the_job_id_attaches_again(
    cli_env: dict[str, str], sandbox: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGINT (or SIGTERM) while waiting: exit 130 (143), the job goes on, the hint works, the output is complete."""
    # Given: batches that take a few seconds, so the CLI is still waiting when interrupted
    sandbox.configure(processing_min_s=3.0, processing_max_s=3.0)
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\n" + "".join(f"Acme,Doe{i}\n" for i in range(20)))
    output = tmp_path / "out.csv"
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED} | cli_env
    process = subprocess.Popen(
        [sys.executable, "-m", "dropq", "enrich", str(source), "-o", str(output), "--job-id", "cli-detach"],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A suite started in the background (`make test &`) runs with SIGINT ignored, and a child
        # inherits that: give the CLI the disposition of a terminal, where Ctrl-C is delivered.
        preexec_fn=_deliver_sigint,
    )  # fmt: skip
    # When: interrupted once the job is sent
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not sandbox.stats()["batches_received"]:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    # Then
    assert process.returncode == 128 + signum, stderr
    assert "dropq status cli-detach --wait" in stderr
    assert f"dropq enrich {source} -o {output} --job-id cli-detach" in stderr
    assert not output.exists()
    again = run_dropq(["enrich", str(source), "-o", str(output), "--job-id", "cli-detach", "-q"], cli_env)
    assert again.returncode == 0, again.stderr
    rows = _read_csv(output)
    assert [r["Last Name"] for r in rows] == [f"Doe{i}" for i in range(20)]
    assert all(r["status"] in ("enriched", "not_found") for r in rows)
    assert sandbox.stats()["batches_received"] == 1


@pytest.mark.parametrize(("flags", "escaped"), [([], True), (["--raw-csv"], False)])
def test_cells_a_spreadsheet_would_run_are_neutralised_unless_raw_is_asked(
    cli_env: dict[str, str], tmp_path: Path, flags: list[str], escaped: bool
) -> None:
    """Formula cells in kept columns and in the columns echoed by the API get a leading ' (OWASP); --raw-csv not."""
    # Given: formulas in a column never sent, and in a name the API echoes back
    source = tmp_path / "hostile.csv"
    source.write_text(
        "First Name,Last Name,Website,Note\n"
        'Ada,"=HYPERLINK(""http://evil.example"")",acme.example,+cmd|calc\n'
        "Alan,Turing,globex.example,@SUM(A1)\n"
    )
    output = tmp_path / "out.csv"
    # When
    done = run_dropq(["enrich", str(source), "-o", str(output), "-q", *flags], cli_env)
    # Then
    assert done.returncode == 0, done.stderr
    rows = _read_csv(output)
    expected = ["'+cmd|calc", "'@SUM(A1)"] if escaped else ["+cmd|calc", "@SUM(A1)"]
    assert [row["Note"] for row in rows] == expected
    first_name = rows[0]["Last Name"]
    assert first_name.startswith("'=HYPERLINK") if escaped else first_name.startswith("=HYPERLINK")
    assert not [cell for row in rows for cell in row.values() if escaped and cell and cell[0] in "=+-@\t\r"]


def test_waiting_for_a_job_not_yet_accepted_is_paced_not_a_busy_loop(
    redis_url: str, sandbox: Any, start_worker: Any, tmp_path: Path
) -> None:
    """The call is taken but its job never shows where the CLI looks: the CLI waits at a few calls/s."""
    # Given: a worker of this deployment that keeps its state in another Redis database than the CLI's
    env = worker_env(redis_url, sandbox, tmp_path)
    elsewhere = redis_url.rsplit("/", 1)[0] + "/1"
    start_worker({**env, "REDIS_URL": elsewhere, "CELERY_BROKER_URL": redis_url})
    source = tmp_path / "one.csv"
    source.write_text("First Name,Last Name,Website\nAda,Lovelace,acme.example\n")
    client = redis.Redis.from_url(redis_url)
    other = redis.Redis.from_url(elsewhere)
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED} | env
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropq", "enrich", str(source), "-o", str(tmp_path / "out.csv"), "-q"],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not other.keys("dropq:job:*") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert other.keys("dropq:job:*"), "the call was sent and taken"
        deadline = time.monotonic() + 20
        while other.zcard("dropq:jobs") and time.monotonic() < deadline:  # its one contact comes back
            time.sleep(0.1)
        assert proc.poll() is None, "the CLI still waits for a job it cannot see"
        # When: the CLI waits for 3 s
        before = int(client.info("stats")["total_commands_processed"])
        calls_before = _calls(client, "hgetall", "xread")
        time.sleep(3)
        per_second = (int(client.info("stats")["total_commands_processed"]) - before) / 3
        reads_per_second = (_calls(client, "hgetall", "xread") - calls_before) / 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        client.close()
        other.flushdb()
        other.close()
    # Then: the CLI and the idle worker together, far from the 5,000 a second of a busy loop; the CLI's own
    # reads (the ledger's HGETALL and the stream's XREAD, 51,065 and 51,064 in 10 s when it spun) a few a second
    assert per_second < 100, per_second
    assert reads_per_second <= 10, reads_per_second


def _calls(client: redis.Redis, *commands: str) -> int:
    """How many times Redis ran these commands since it started (INFO commandstats)."""
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in commands)
