"""The real PostgreSQL of this machine for the tests that write to one (the destination, the result cache)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

__all__ = ["POSTGRES_DSN", "pg_dsn", "table"]

POSTGRES_DSN = os.environ.get("DROPQ_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_dsn() -> str:
    """The test database's DSN; skips when PostgreSQL is unreachable, except under CI where it must run."""
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=2).close()
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"PostgreSQL must be reachable under CI at {POSTGRES_DSN}: {exc}") from exc
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_DSN}: {exc}")
    return POSTGRES_DSN


@pytest.fixture
def table(pg_dsn: str) -> Iterator[str]:
    """A table name of this test's own, dropped afterwards."""
    name = f"dropq_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(psycopg.sql.Identifier(name)))
