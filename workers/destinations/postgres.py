"""The ``postgres`` destination: one row per record in a table, keyed by ``(job_id, idx)``.

The table is created when missing::

    job_id text, idx bigint, status text, reason text, record jsonb, input jsonb,
    delivered_at timestamptz default now(), primary key (job_id, idx)

A unit is inserted in one transaction with ``ON CONFLICT (job_id, idx) DO
NOTHING``, so a unit delivered twice (a retry, a redelivery after a crash)
leaves one row per record. Each worker process keeps one connection, opened on
first use and again after a failure. psycopg is imported here only, so dropq
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
        self._connection: psycopg.Connection[Any] | None = None
        # Celery's thread pool would share the destination: one connection, one user at a time.
        self._lock = threading.Lock()

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

        with self._lock:
            try:
                self._insert(job_id, outcomes)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._close()
                raise DestinationError(self.name, self._scrub(f"database unavailable: {exc}")) from exc
            except psycopg.Error as exc:
                if self._connection is not None and self._connection.broken:
                    self._close()
                reason = self._scrub(f"database refused the rows: {type(exc).__name__}: {exc}")
                raise DestinationError(self.name, reason, is_transient=False) from exc

    def finish(self, job_id: str) -> None:
        """Nothing to assemble: rows are visible as soon as their unit is committed."""

    def _insert(self, job_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
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
        connection = self._connect()
        with connection.transaction(), connection.cursor() as cursor:
            cursor.executemany(insert, rows)

    def _connect(self) -> psycopg.Connection[Any]:
        """This process's connection, opened (and the table created) when there is none."""
        if self._connection is not None and not self._connection.closed:
            return self._connection
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
        self._connection = connection
        return connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

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
