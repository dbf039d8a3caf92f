"""The ``postgres`` destination: one row per record in a table, keyed by ``(job_id, idx)``.

The table is created when missing::

    job_id text, idx bigint, status text, reason text, record jsonb, input jsonb,
    delivered_at timestamptz default now(), primary key (job_id, idx)

A unit is inserted in one transaction with ``ON CONFLICT (job_id, idx) DO
NOTHING``, so a unit delivered twice (a retry, a redelivery after a crash)
leaves one row per record. Each worker process keeps at most ``POOL_SIZE``
connections, opened on first use and again after a failure; a delivery that
finds them all busy for ``POOL_WAIT_S`` is retried later (a transient error),
so a slow or unreachable database never holds all of a process's threads
(submits and polls share them). psycopg is imported here only, so dropq
without the ``postgres`` extra still imports. The DSN may hold a password: it
never appears in an error reason.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dropq.workers.destinations.base import DestinationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresDestination"]

# libpq's connect_timeout: a database that does not answer fails the attempt (transient) instead of hanging.
CONNECT_TIMEOUT_S = 5
# No statement may hold a worker longer than this (a lock held by someone else, say).
STATEMENT_TIMEOUT_MS = 30_000
# Connections per worker process: a few deliveries in parallel, never one per thread (a process runs 64,
# a Postgres server allows 100 connections by default).
POOL_SIZE = 4
# A delivery waits this long for a free connection, then is retried later: threads never pile up behind it.
POOL_WAIT_S = 2.0
_REDACTED = "[redacted]"
# Credentials in URL form (scheme://user:password@host) and in key=value form (password=...).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


class PostgresDestination:
    """Inserts each outcome as a row, once.

    Args:
        name: the destination's name in the config.
        dsn: a libpq connection string or URL.
        table: the table, ``name`` or ``schema.name`` (validated by the config loader).
        connect_timeout_s: how long a connection attempt may take.
    """

    def __init__(self, name: str, dsn: str, table: str, *, connect_timeout_s: int = CONNECT_TIMEOUT_S) -> None:
        self.name = name
        self._dsn = dsn
        self._table = table
        self._connect_timeout_s = connect_timeout_s
        # Celery's thread pool shares the destination: each connection has one user at a time.
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._idle: list[psycopg.Connection[Any]] = []
        self._idle_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresDestination(name={self.name!r}, table={self._table!r})"

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Insert the unit's rows in one transaction; rows already there are left alone.

        Raises:
            DestinationError: transient when the database is unreachable or the connection broke,
                permanent when it refuses the statement (a table of another shape, bad data).
        """
        if not outcomes:
            return
        import psycopg

        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise DestinationError(self.name, f"all {POOL_SIZE} database connections of this worker are busy")
        connection: psycopg.Connection[Any] | None = None
        try:
            connection = self._take()
            self._insert(connection, job_id, outcomes)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            _close(connection)
            raise DestinationError(self.name, self._scrub(f"database unavailable: {exc}")) from exc
        except psycopg.Error as exc:
            if connection is not None and connection.broken:
                _close(connection)
            reason = self._scrub(f"database refused the rows: {type(exc).__name__}: {exc}")
            raise DestinationError(self.name, reason, is_transient=False) from exc
        finally:
            if connection is not None and not connection.closed:
                with self._idle_lock:
                    self._idle.append(connection)
            self._slots.release()

    def finish(self, job_id: str) -> None:
        """Nothing to assemble: rows are visible as soon as their unit is committed."""

    def _insert(self, connection: psycopg.Connection[Any], job_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        table = sql.Identifier(*self._table.split("."))
        insert = sql.SQL(
            "INSERT INTO {} (job_id, idx, status, reason, record, input) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (job_id, idx) DO NOTHING"
        ).format(table)
        rows = [
            (
                job_id,
                int(o["index"]),
                o.get("status"),
                o.get("reason"),
                None if o.get("record") is None else Jsonb(o["record"]),
                None if o.get("input") is None else Jsonb(o["input"]),
            )
            for o in outcomes
        ]
        with connection.transaction(), connection.cursor() as cursor:
            cursor.executemany(insert, rows)

    def _take(self) -> psycopg.Connection[Any]:
        """An idle connection of this process, or a new one (the table created) when none is left."""
        with self._idle_lock:
            while self._idle:
                connection = self._idle.pop()
                if not connection.closed:
                    return connection
        import psycopg
        from psycopg import sql

        connection = psycopg.connect(self._dsn, connect_timeout=self._connect_timeout_s, autocommit=True)
        try:
            connection.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS)))
            # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog: one process at a time.
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._table,))
                connection.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (job_id text, idx bigint, status text, reason text,"
                        " record jsonb, input jsonb, delivered_at timestamptz DEFAULT now(),"
                        " PRIMARY KEY (job_id, idx))"
                    ).format(sql.Identifier(*self._table.split(".")))
                )
        except BaseException:
            connection.close()
            raise
        return connection

    def _scrub(self, text: str) -> str:
        """The text without the DSN or any password it holds."""
        from psycopg.conninfo import conninfo_to_dict

        text = text.replace(self._dsn, "[dsn]")
        try:
            password = conninfo_to_dict(self._dsn).get("password")
        except Exception:
            # An unparsable DSN: the patterns below still catch the usual forms.
            password = None
        if isinstance(password, str) and password:
            text = text.replace(password, _REDACTED)
        text = _URL_PASSWORD.sub(rf"\1{_REDACTED}@", text)
        return _KV_PASSWORD.sub(rf"\1{_REDACTED}", text)


def _close(connection: psycopg.Connection[Any] | None) -> None:
    """Close a connection that failed (it is not handed to the next delivery)."""
    if connection is not None:
        connection.close()
