"""The postgres destination on the real PostgreSQL of this machine, alone and behind real workers."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dropq.workers.destinations.base import DestinationError
from dropq.workers.destinations.postgres import PostgresDestination
from dropq.workers.pg import POOL_SIZE, POOL_WAIT_S
from tests.support.contacts import make_contacts
from tests.support.pipeline import add_destination, read_stream, wait_for_job, worker_env
from tests.support.processes import client_app


def _rows(dsn: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        query = psycopg.sql.SQL("SELECT job_id, idx, status, reason, record, input FROM {} ORDER BY job_id, idx")
        return conn.execute(query.format(psycopg.sql.Identifier(table))).fetchall()


def _outcome(job_id: str, index: int) -> dict[str, Any]:
    record = {"first_name": "Ada", "custom_fields": {"crm_id": str(index)}}
    return {"job_id": job_id, "index": index, "status": "enriched", "reason": None, "record": record, "input": record}


def test_a_unit_delivered_twice_leaves_one_row_per_record(pg_dsn: str, table: str) -> None:
    """The table is created on first use, and a second delivery of the same unit adds nothing."""
    destination = PostgresDestination("pg", pg_dsn, table)
    outcomes = [_outcome("job-1", i) for i in range(3)]
    destination.deliver("job-1", "unit-a", outcomes)
    destination.deliver("job-1", "unit-a", outcomes)
    rows = _rows(pg_dsn, table)
    assert [(r[0], r[1], r[2]) for r in rows] == [("job-1", i, "enriched") for i in range(3)]
    assert rows[2][4] == {"first_name": "Ada", "custom_fields": {"crm_id": "2"}}


def test_threads_share_a_few_connections_and_a_busy_pool_is_a_retry_not_a_wait(pg_dsn: str, table: str) -> None:
    """32 threads deliver at once over at most POOL_SIZE connections; with every connection held, the next waits
    POOL_WAIT_S at most and gets a transient error, so a slow database never holds all of a worker's threads."""
    destination = PostgresDestination("pg", pg_dsn, table)
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda n: destination.deliver("job-t", f"unit-{n}", [_outcome("job-t", n)]), range(64)))
    assert [r[1] for r in _rows(pg_dsn, table)] == list(range(64))
    assert destination.pool.idle <= POOL_SIZE
    for _ in range(POOL_SIZE):  # every connection busy (a database that stopped answering, say)
        assert destination.pool.hold(timeout_s=1)
    started = time.monotonic()
    with pytest.raises(DestinationError) as caught:
        destination.deliver("job-t", "unit-late", [_outcome("job-t", 99)])
    assert caught.value.is_transient and "busy" in str(caught.value)
    assert time.monotonic() - started < POOL_WAIT_S + 1


def test_a_table_of_another_shape_is_a_permanent_error(pg_dsn: str, table: str) -> None:
    """An existing table without the expected columns fails the delivery for good, without retries."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE TABLE {} (id int)").format(psycopg.sql.Identifier(table)))
    destination = PostgresDestination("pg", pg_dsn, table)
    with pytest.raises(DestinationError) as caught:
        destination.deliver("job-1", "unit-a", [_outcome("job-1", 0)])
    assert not caught.value.is_transient


def test_an_unreachable_database_is_transient_and_its_password_is_scrubbed() -> None:
    """A refused connection is worth retrying; the reason shows neither the DSN nor its password."""
    dsn = "postgresql://postgres:pw-9d2e71c4@127.0.0.1:1/test"
    destination = PostgresDestination("pg", dsn, "t", connect_timeout_s=2)
    with pytest.raises(DestinationError) as caught:
        destination.deliver("job-1", "unit-a", [_outcome("job-1", 0)])
    assert caught.value.is_transient
    assert "pw-9d2e71c4" not in str(caught.value) and dsn not in str(caught.value)


def test_a_job_through_a_worker_ends_with_one_row_per_input_record(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path, pg_dsn: str, table: str
) -> None:
    """A small job with rejects and duplicates sent to pg and stream: one row per input record, each once."""
    # Given
    env = worker_env(redis_url, sandbox, tmp_path, DROPQ_TEST_PG_DSN=pg_dsn)
    add_destination(env, "pg", "postgres", dsn_env="DROPQ_TEST_PG_DSN", table=table)
    start_worker(env, concurrency=3)
    n = 600
    app = client_app(redis_url)
    # When
    try:
        kwargs = {
            "contacts": make_contacts(n, invalid_every=37, duplicate_every=23),
            "job_id": "pg-1",
            "destinations": ["pg", "stream"],
        }
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()
    status = wait_for_job(redis_url, "pg-1", timeout_s=30)
    # Then
    assert status.received == n and status.deliveries_failed == 0
    rows = _rows(pg_dsn, table)
    assert [r[1] for r in rows] == list(range(n)) and {r[0] for r in rows} == {"pg-1"}
    assert {r[2] for r in rows} >= {"rejected", "duplicate"}
    assert sorted(o["index"] for o in read_stream(redis_url, "pg-1")) == list(range(n))


def test_a_wrong_dsn_retries_then_gives_up_without_leaking_the_password(
    start_worker: Any, redis_url: str, sandbox: Any, tmp_path: Path
) -> None:
    """A DSN pointing nowhere: each unit is retried, then counted in deliveries_failed; the log has no password."""
    # Given: a DSN on a port nothing listens on, with a recognisable password
    password = "pw-4b8f0e2a61"
    env = worker_env(
        redis_url,
        sandbox,
        tmp_path,
        DROPQ_MAX_RETRIES="1",
        DROPQ_TEST_PG_DSN=f"postgresql://u:{password}@127.0.0.1:1/x",
    )
    add_destination(env, "pg", "postgres", dsn_env="DROPQ_TEST_PG_DSN")
    worker = start_worker(env, concurrency=2)
    n = 300
    app = client_app(redis_url)
    # When
    try:
        kwargs = {"contacts": make_contacts(n), "job_id": "pg-bad", "destinations": ["pg", "stream"]}
        app.send_task("dropq.enrich", kwargs=kwargs).get(timeout=30)
    finally:
        app.close()
    status = wait_for_job(redis_url, "pg-bad", timeout_s=30)
    # Then
    assert status.received == n and status.deliveries_failed == status.batches == 2
    assert sorted(o["index"] for o in read_stream(redis_url, "pg-bad")) == list(range(n))
    events = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    retried = [e for e in events if e.get("event") == "delivery_retry" and e.get("destination") == "pg"]
    failed = [e for e in events if e.get("event") == "delivery_failed" and e.get("destination") == "pg"]
    assert len(retried) == 2 and len(failed) == 2
    assert password not in worker.output()
