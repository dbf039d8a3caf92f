"""``dropq health`` as a healthcheck runs it: a subprocess against a real Redis and a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

from dropq.workers import keys
from dropq.workers.embedded import free_port
from dropq.workers.runtime import SANDBOX_DEFAULT_KEY
from tests.support.processes import ROOT

pytestmark = pytest.mark.timeout(90)

_ACCOUNT = keys.account_id(SANDBOX_DEFAULT_KEY)


def run_health(redis_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``dropq health ARGS`` on the private Redis."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPQ_", "DROPCONTACT_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "-m", "dropq", "health", *args],
        cwd=ROOT, env={**full_env, "REDIS_URL": redis_url, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_a_deployment_with_a_worker_is_healthy_and_says_so_in_one_line(redis_url: str, start_worker: Any) -> None:
    """Redis answers, a worker consumes dropq.produce, the limiter is fresh: exit 0 and one `ok:` line."""
    # Given
    start_worker({}, name="healthy")
    # When
    anywhere = run_health(redis_url)
    here = run_health(redis_url, "--here")
    # Then
    for done in (anywhere, here):
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("\n") == 1 and done.stdout.startswith("ok: redis ")
        assert "healthy@" in done.stdout and "limiter 60/s x1.00" in done.stdout


def test_no_worker_of_this_deployment_is_unhealthy(redis_url: str, start_worker: Any) -> None:
    """A worker of another deployment (another DROPQ_KEY_PREFIX) on the same Redis does not count."""
    # Given
    start_worker({"DROPQ_KEY_PREFIX": "staging"}, name="other")
    # When
    done = run_health(redis_url)
    # Then
    assert done.returncode == 1
    assert done.stdout == "unhealthy: no worker consumes dropq.produce\n"
    assert run_health(redis_url, DROPQ_KEY_PREFIX="staging").returncode == 0
    assert run_health(redis_url, "--no-worker").returncode == 0


def test_a_redis_that_does_not_answer_is_unhealthy() -> None:
    """Nothing listens at REDIS_URL: exit 1 within the probe's timeout, the URL named without its password."""
    started = time.monotonic()
    done = run_health(f"redis://:hunter22@127.0.0.1:{free_port()}/0", "--timeout", "1")
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: redis redis://:***@127.0.0.1:") and "hunter22" not in done.stdout
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("key", "write", "phrase"),
    [
        ("cooldown", lambda c, now_ms: c.hset(keys.cooldown_key(_ACCOUNT), mapping={"until": now_ms + 3_600_000}),
         "cooldown of"),
        ("limiter", lambda c, now_ms: c.set(keys.limiter_key(_ACCOUNT), (now_ms + 600_000) * 1000, px=700_000),
         "scheduled"),
        ("limiter", lambda c, now_ms: c.set(keys.limiter_key(_ACCOUNT), now_ms * 1000), "without a TTL: limiter"),
    ],
)  # fmt: skip
def test_a_stuck_limiter_is_unhealthy(
    redis_client: redis.Redis, redis_url: str, key: str, write: Any, phrase: str
) -> None:
    """A cooldown no 429 sets, a bucket an hour ahead, a limiter key without TTL: exit 1, naming the problem."""
    # Given
    seconds, micros = redis_client.time()
    write(redis_client, seconds * 1000 + micros // 1000)
    # When
    done = run_health(redis_url, "--no-worker")
    # Then
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: limiter stuck: ") and phrase in done.stdout, done.stdout


def test_a_credit_pause_is_reported_but_healthy(redis_client: redis.Redis, redis_url: str) -> None:
    """Out of credits, submits wait by design: the line says so, the exit status stays 0."""
    redis_client.set(keys.credits_pause_key(_ACCOUNT), '{"since_ms": 1, "needed": 5}', px=60_000)
    done = run_health(redis_url, "--no-worker")
    assert done.returncode == 0 and "credits paused" in done.stdout
