"""Errors a person understands: each check of ``dropq enrich`` fails fast, says why and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from dropq.workers.embedded import free_port
from tests.integration.test_cli_enrich import run_dropq

pytestmark = pytest.mark.timeout(60)


def _contacts(tmp_path: Path) -> Path:
    source = tmp_path / "leads.csv"
    source.write_text("Company,Last Name\nAcme,Doe\n")
    return source


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    """A path that does not exist: exit status 2 and the path in the message."""
    done = run_dropq(["enrich", str(tmp_path / "nope.csv")], {})
    assert done.returncode == 2
    assert "nope.csv: no such file" in done.stderr


def test_an_unreachable_redis_is_named_with_how_to_start_one(tmp_path: Path) -> None:
    """No Redis at REDIS_URL: the URL, `redis-server` and --local in the message; status 1."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = run_dropq(["enrich", str(_contacts(tmp_path))], {"REDIS_URL": url, "DROPCONTACT_API_KEY": "k"})
    assert done.returncode == 1
    assert f"Redis is not reachable at {url}" in done.stderr and "redis-server" in done.stderr


def test_a_wrong_token_fails_before_anything_is_submitted(redis_url: str, sandbox: Any, tmp_path: Path) -> None:
    """The free credit check catches a refused token: status 2, nothing POSTed, nothing queued, key not shown."""
    env = {"REDIS_URL": redis_url, "DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": "wrong-key-123"}
    done = run_dropq(["enrich", str(_contacts(tmp_path))], env)
    assert done.returncode == 2, done.stderr
    assert "refused the access token (401)" in done.stderr and "DROPCONTACT_API_KEY" in done.stderr
    assert "wrong-key-123" not in done.stderr + done.stdout
    assert sandbox.stats()["batches_received"] == 0
    assert redis.Redis.from_url(redis_url).keys("dropq:*") == []


def test_no_listening_worker_is_said_instead_of_waiting(redis_url: str, sandbox: Any, tmp_path: Path) -> None:
    """Redis answers but no worker does: say so, how to start one, and submit nothing."""
    env = {"REDIS_URL": redis_url, "DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": sandbox.api_key}
    done = run_dropq(["enrich", str(_contacts(tmp_path)), "--ping-timeout", "0.3"], env)
    assert done.returncode == 1
    assert "no dropq worker consumes dropq.produce" in done.stderr and "dropq worker" in done.stderr
    assert redis.Redis.from_url(redis_url).llen("dropq.produce") == 0


def test_no_api_key_without_local_says_how_to_get_going(redis_url: str, tmp_path: Path) -> None:
    """Without a key on the real API's URL: set the key or use --local; status 2."""
    done = run_dropq(["enrich", str(_contacts(tmp_path))], {"REDIS_URL": redis_url})
    assert done.returncode == 2
    assert "DROPCONTACT_API_KEY is not set" in done.stderr and "--local" in done.stderr


def test_a_bad_map_override_is_refused(tmp_path: Path) -> None:
    """--map with a field the API does not know: status 2, the rule and the override quoted."""
    done = run_dropq(["enrich", str(_contacts(tmp_path)), "--map", "Company=boss"], {})
    assert done.returncode == 2
    assert "--map must be COLUMN=FIELD with an API field" in done.stderr
    assert "got 'Company=boss'" in done.stderr


def test_status_of_an_unknown_job_fails(redis_url: str) -> None:
    """`dropq status` of a job Redis does not have: status 1 and the job named."""
    done = run_dropq(["status", "no-such-job"], {"REDIS_URL": redis_url})
    assert done.returncode == 1
    assert "no job 'no-such-job'" in done.stderr


def test_credits_reads_the_balance_for_free(sandbox: Any) -> None:
    """`dropq credits` prints the balance; the sandbox counts a credit check and no batch."""
    sandbox.configure(credits=1234)
    env = {"DROPCONTACT_API_URL": sandbox.url, "DROPCONTACT_API_KEY": sandbox.api_key}
    done = run_dropq(["credits"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1,234 credits left"
    assert sandbox.stats()["batches_received"] == 0
