"""The result cache in PostgreSQL: one table per deployment (``{prefix}_result_cache``), created when missing,
keyed by the digest.

::

    key bytea primary key, status text, fetched_at timestamptz, answer text

An index on ``fetched_at`` lets the purge delete old entries without a scan.
A write replaces an entry only with a newer one, so two workers keeping the
same contact at once leave the later answer. Connections come from a
``PgPool`` of a few per worker process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dropq.workers import keys
from dropq.workers.cache import CacheError, Stored
from dropq.workers.pg import PgPool, PoolBusy, describe_error

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresCacheStore", "table_for"]


def table_for(prefix: str) -> str:
    """The table of a deployment (``DROPQ_KEY_PREFIX``): ``{prefix}_result_cache``, so that ``clear`` and the
    purge of one deployment never touch another's entries in a shared database."""
    return f"{prefix}_result_cache"


class PostgresCacheStore:
    """Entries as rows of ``TABLE``.

    Args:
        dsn: a libpq connection URL (``postgresql://...``).
        table: the table's name (tests use their own); the deployment's by default (``table_for``).
    """

    kind = "postgresql"

    def __init__(self, dsn: str, table: str | None = None) -> None:
        self._table = table or table_for(keys.prefix())
        self._pool = PgPool(dsn, self._create_table, self._table)

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Stored]:
        """The entries found among these keys."""
        rows = self._run(
            "SELECT key, status, (extract(epoch from fetched_at) * 1000)::bigint, answer FROM {} WHERE key = ANY(%s)",
            (list(keys),),
            fetch=True,
        )
        return {bytes(key): Stored(status, int(ms), answer) for key, status, ms, answer in rows}

    def put_many(self, entries: Mapping[bytes, Stored], *, max_age_ms: Mapping[str, int]) -> None:
        """Write these entries; one already there is replaced only by a newer one."""
        self._run(
            "INSERT INTO {} (key, status, fetched_at, answer)"
            " SELECT k, s, to_timestamp(t / 1000.0), a FROM unnest(%s::bytea[], %s::text[], %s::bigint[], %s::text[])"
            " AS e(k, s, t, a)"
            " ON CONFLICT (key) DO UPDATE SET status = excluded.status, fetched_at = excluded.fetched_at,"
            " answer = excluded.answer WHERE {}.fetched_at <= excluded.fetched_at",
            (
                list(entries),
                [e.status for e in entries.values()],
                [e.fetched_ms for e in entries.values()],
                [e.answer for e in entries.values()],
            ),
        )

    def delete_many(self, keys: Sequence[bytes]) -> int:
        """Delete these keys; how many were there."""
        return int(self._run("DELETE FROM {} WHERE key = ANY(%s)", (list(keys),)))

    def clear(self) -> int:
        """Delete every entry."""
        return int(self._run("DELETE FROM {}", ()))

    def purge(self, *, found_before_ms: int, not_found_before_ms: int) -> int:
        """Delete entries too old to answer."""
        return int(
            self._run(
                "DELETE FROM {} WHERE (status = 'not_found' AND fetched_at < to_timestamp(%s / 1000.0))"
                " OR (status <> 'not_found' AND fetched_at < to_timestamp(%s / 1000.0))",
                (not_found_before_ms, found_before_ms),
            )
        )

    def check(self) -> str | None:
        """Nothing to refuse: a table grows on disk, not in the broker's memory."""
        return None

    def size(self) -> tuple[int, int]:
        """Entries, and the table's bytes on disk (its index and TOAST included)."""
        rows = self._run("SELECT count(*), pg_total_relation_size(%s::regclass) FROM {}", (self._table,), fetch=True)
        return int(rows[0][0]), int(rows[0][1])

    def _create_table(self, connection: psycopg.Connection[Any]) -> None:
        from psycopg import sql

        table = sql.Identifier(self._table)
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (key bytea PRIMARY KEY, status text NOT NULL,"
                " fetched_at timestamptz NOT NULL, answer text NOT NULL)"
            ).format(table)
        )
        connection.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (fetched_at)").format(
                sql.Identifier(f"{self._table}_fetched_at"), table
            )
        )

    def _run(self, statement: str, params: Sequence[Any], *, fetch: bool = False) -> Any:
        """Run one statement (``{}`` is the table); its rows, or how many rows it touched.

        Raises:
            CacheError: the database is unreachable, busy or refused the statement.
        """
        import psycopg
        from psycopg import sql

        table = sql.Identifier(self._table)
        query = sql.SQL(statement).format(*([table] * statement.count("{}")))
        try:
            with self._pool.connection() as connection, connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if fetch else cursor.rowcount
        except PoolBusy as exc:
            raise CacheError(str(exc)) from exc
        except psycopg.Error as exc:
            raise CacheError(self._pool.scrub(f"cache database: {describe_error(exc)}")) from exc
