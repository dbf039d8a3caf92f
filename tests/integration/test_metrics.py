"""``dropq metrics`` as Prometheus scrapes it: a real subprocess over HTTP, after a real job on a real worker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from dropq.config.settings import from_env
from dropq.workers import keys
from dropq.workers.limiter.credits import CreditGuard
from dropq.workers.metrics.collector import DropqCollector
from tests.support.contacts import make_contacts
from tests.support.pipeline import wait_for_job, worker_env
from tests.support.processes import ROOT, client_app

pytestmark = pytest.mark.timeout(120)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dropq_env(env: dict[str, str]) -> dict[str, str]:
    scrubbed = ("DROPCONTACT_API_KEY", "DROPCONTACT_API_URL", "REDIS_URL", "CELERY_BROKER_URL", "DROPQ_DESTINATIONS")
    return {k: v for k, v in os.environ.items() if k not in scrubbed} | env


@pytest.fixture
def scrape(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Samples]]:
    """Start ``dropq metrics --port P`` with an environment (once) and scrape its /metrics over HTTP."""
    started: list[tuple[subprocess.Popen[bytes], int]] = []

    def get(env: dict[str, str]) -> Samples:
        if not started:
            port = _free_port()
            log = (tmp_path / "metrics.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "dropq", "metrics", "--port", str(port)],
                cwd=ROOT, env=_dropq_env(env), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            started.append((process, port))
        process, port = started[0]
        deadline = time.monotonic() + 15
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "metrics.log").read_text()) from None
                time.sleep(0.1)
        assert response.status_code == 200
        samples: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    yield get
    for process, _ in started:
        process.terminate()
        assert process.wait(timeout=10) == 0


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of one sample (its labels given in full, or none)."""
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= set(found))


def test_metrics_after_a_job_match_the_ledger_the_status_and_the_sandbox(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, scrape: Callable[[dict[str, str]], Samples]
) -> None:
    """After a job with rejects, duplicates and a 429 storm, /metrics says what the ledger, status and API saw."""
    # Given: a worker, the API answering 429 to everything until it has answered one (a storm), then taking
    # longer than the first poll's 0.3 s to process a batch (so the delay from ready to delivered is known)
    env = worker_env(redis_url, sandbox, tmp_path)
    start_worker(env, concurrency=4)
    sandbox.configure(storm_s=600, processing_min_s=0.8, processing_max_s=1.2)
    contacts = make_contacts(1200, invalid_every=37, duplicate_every=23)
    app = client_app(redis_url)
    # When
    try:
        app.send_task("dropq.enrich", kwargs={"contacts": contacts, "job_id": "metrics-1"}).get(timeout=30)
    finally:
        app.close()
    deadline = time.monotonic() + 30
    while sandbox.stats()["rate_limited"] == 0:
        assert time.monotonic() < deadline, "no request reached the API"
        time.sleep(0.05)
    sandbox.configure(storm_s=0)
    status = wait_for_job(redis_url, "metrics-1")
    # The workers flush their request counts once a second: wait until every request the API saw is in.
    api = sandbox.stats()
    deadline = time.monotonic() + 5
    samples = scrape(env)
    while total(samples, "dropq_api_requests_total") < api["requests_total"]:
        assert time.monotonic() < deadline, (api, samples)
        time.sleep(0.3)
        samples = scrape(env)
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "dropq", "status", "metrics-1", "--json"],
            cwd=ROOT, env=_dropq_env(env), capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    )  # fmt: skip
    # Then: records and batches agree with the ledger
    account = keys.account_id(sandbox.api_key)
    assert value(samples, "dropq_up") == 1
    assert value(samples, "dropq_records_received_total") == status.received == 1200
    assert value(samples, "dropq_records_total", status="enriched") == status.enriched
    assert value(samples, "dropq_records_total", status="not_found") == status.not_found
    assert value(samples, "dropq_records_total", status="rejected") == status.rejected > 0
    assert value(samples, "dropq_records_total", status="duplicate") == status.duplicates > 0
    assert value(samples, "dropq_records_total", status="failed") == status.failed == 0
    assert total(samples, "dropq_records_total") == status.accounted
    assert value(samples, "dropq_batches_created_total") == status.batches
    assert value(samples, "dropq_batches_closed_total", state="done") == status.batches_done == status.batches
    assert total(samples, "dropq_batches") == 0
    assert value(samples, "dropq_batch_oldest_waiting_age_seconds") == 0
    assert value(samples, "dropq_jobs_finished_total") == 1
    assert total(samples, "dropq_jobs") == 0
    assert value(samples, "dropq_records_waiting") == 0
    # ...deliveries with the ledger: every unit written to the jsonl file, none given up
    assert value(samples, "dropq_deliveries_total", destination="jsonl", outcome="delivered") > 0
    assert total(samples, "dropq_deliveries_total", outcome="failed") == status.deliveries_failed == 0
    # ...requests with what the API answered, 429s included
    statuses = {int(code): n for code, n in api["status_counts"].items()}
    assert value(samples, "dropq_api_requests_total", account=account, kind="POST", outcome="2xx") == (
        status.batches_submitted
    )
    assert total(samples, "dropq_api_requests_total", outcome="429") == statuses.get(429, 0) > 0
    assert total(samples, "dropq_api_requests_total", outcome="2xx") == statuses.get(200, 0)
    gets = api["polls_ready"] + api["polls_not_ready"] + api["polls_in_progress"]
    assert value(samples, "dropq_api_requests_total", account=account, kind="GET", outcome="2xx") == gets
    # ...the GETs-per-batch histogram: one observation per batch, summing to every GET that answered
    assert value(samples, "dropq_batch_get_requests_count") == status.batches
    assert value(samples, "dropq_batch_get_requests_sum") == gets
    assert value(samples, "dropq_batch_get_requests_bucket", le="+Inf") == status.batches
    assert value(samples, "dropq_batch_get_requests_bucket", le="0") == 0
    # ...ready-to-delivered where known (batches seen unready first), never more than the batches
    known = value(samples, "dropq_batch_ready_to_delivered_seconds_count")
    assert 0 < known <= status.batches
    assert 0 <= value(samples, "dropq_batch_ready_to_delivered_seconds_sum") < known * 30
    # ...credits and limiter with `dropq status`
    assert value(samples, "dropq_credits_left", account=account) == report["credits"]["balance"]
    assert value(samples, "dropq_credits_paused", account=account) == int(report["credits"]["paused"]) == 0
    assert value(samples, "dropq_credits_spent_today", account=account) == report["credits"]["budget_spent_today"]
    # The storm's 429 lowered the factor, which climbs back 2% a second: `dropq status` ran just after.
    factor = value(samples, "dropq_limiter_rate_factor", account=account)
    assert factor <= report["limiter"]["adaptive_factor"] <= factor + 0.1
    assert value(samples, "dropq_limiter_rate_per_second", account=account) == pytest.approx(50 * factor)
    # ...and the one worker, alive
    assert value(samples, "dropq_workers_alive") == 1
    assert value(samples, "dropq_broker_messages", queue="dropq.submit", stage="submit", state="ready") == 0


def test_broker_depth_counts_ready_and_scheduled_messages_and_the_pause_shows(
    start_worker: Any,
    redis_url: str,
    redis_client: Any,
    sandbox: Any,
    tmp_path: Path,
    scrape: Callable[[dict[str, str]], Samples],
) -> None:
    """A message nobody took is ready; one a worker holds for its countdown is scheduled, not lost from view."""
    # Given: no worker yet, and a ping waiting in the produce queue
    env = worker_env(redis_url, sandbox, tmp_path)
    app = client_app(redis_url)
    try:
        app.send_task("dropq.ping", queue="dropq.produce")
        before = scrape(env)
        # When: a worker takes it, and a ping due in a minute
        start_worker(env, concurrency=2)
        app.send_task("dropq.ping", queue="dropq.produce", countdown=60)
        deadline = time.monotonic() + 10
        after = scrape(env)
        while value(after, "dropq_broker_messages", queue="dropq.produce", stage="produce", state="scheduled") < 1:
            assert time.monotonic() < deadline, after
            time.sleep(0.2)
            after = scrape(env)
    finally:
        app.close()
    CreditGuard(redis_client, keys.account_id(sandbox.api_key)).pause_for_credits(250)
    paused = scrape(env)
    # Then
    assert value(before, "dropq_broker_messages", queue="dropq.produce", stage="produce", state="ready") == 1
    assert value(before, "dropq_workers_alive") == 0
    assert value(after, "dropq_broker_messages", queue="dropq.produce", stage="produce", state="ready") == 0
    assert value(after, "dropq_broker_messages", queue="dropq.produce", stage="produce", state="scheduled") == 1
    assert value(after, "dropq_workers_alive") == 1
    assert value(paused, "dropq_credits_paused", account=keys.account_id(sandbox.api_key)) == 1


def test_a_scrape_while_redis_is_away_says_so_and_nothing_else() -> None:
    """With Redis unreachable, the collector answers dropq_up 0 alone, not stale or zero business values."""
    # Given: a port nobody listens on
    url = f"redis://127.0.0.1:{_free_port()}/0"
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
    # When
    families = list(DropqCollector(client, from_env({"REDIS_URL": url})).collect())
    # Then
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("dropq_up", [0.0])]
