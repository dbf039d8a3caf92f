"""The ``postgres`` destination: one row per record in a table, keyed by ``(job_id, idx)``.

The table is created when missing::

    job_id text, idx bigint, status text, reason text, record jsonb, input jsonb,
    delivered_at timestamptz default now(), primary key (job_id, idx)

A unit is inserted in one transaction with ``ON CONFLICT (job_id, idx) DO
NOTHING``, so a unit delivered twice (a retry, a redelivery after a crash)
leaves one row per record. Connections come from a ``PgPool`` of a few per
worker process (``dropq.workers.pg``); a delivery that finds them all busy
is retried later (a transient error). The DSN may hold a password: it never
appears in an error reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dropq.workers.destinations.base import DestinationError
from dropq.workers.pg import CONNECT_TIMEOUT_S, PgPool, PoolBusy, describe_error

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresDestination"]


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
        self._table = table
        self.pool = PgPool(dsn, self._create_table, table, connect_timeout_s=connect_timeout_s)

    def __repr__(self) -> str:
        return f"PostgresDestination(name={self.name!r}, table={self._table!r})"

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Insert the unit's rows in one transaction; rows already there are left alone.

        Raises:
            DestinationError: transient when the database is unreachable, the connection broke or every
                connection of this worker is busy; permanent when it refuses the statement (a table of
                another shape, bad data).
        """
        if not outcomes:
            return
        import psycopg

        try:
            with self.pool.connection() as connection:
                self._insert(connection, job_id, outcomes)
        except PoolBusy as exc:
            raise DestinationError(self.name, str(exc)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise DestinationError(self.name, self.pool.scrub(f"database unavailable: {exc}")) from exc
        except psycopg.Error as exc:
            # Without PostgreSQL's DETAIL ("Failing row contains (...)": contact data).
            reason = self.pool.scrub(f"database refused the rows: {describe_error(exc)}")
            raise DestinationError(self.name, reason, is_transient=False) from exc

    def finish(self, job_id: str) -> None:
        """Nothing to assemble: rows are visible as soon as their unit is committed."""

    def _create_table(self, connection: psycopg.Connection[Any]) -> None:
        from psycopg import sql

        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (job_id text, idx bigint, status text, reason text,"
                " record jsonb, input jsonb, delivered_at timestamptz DEFAULT now(),"
                " PRIMARY KEY (job_id, idx))"
            ).format(sql.Identifier(*self._table.split(".")))
        )

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
