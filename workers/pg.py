"""A few PostgreSQL connections per worker process, shared by its threads (the destination, the cache).

Each process keeps at most ``POOL_SIZE`` connections, opened on first use and
again after a failure; a caller that finds them all busy for ``POOL_WAIT_S``
gets ``PoolBusy`` and tries later, so a slow or unreachable database never
holds all of a process's threads (submits and polls share them). A new
connection gets a statement timeout and runs the owner's ``setup`` (its
``CREATE TABLE IF NOT EXISTS``) under an advisory lock, since concurrent
creations can still collide in the catalog. psycopg is imported here only
when a connection is made, so dropq without the ``postgres`` extra still
imports. The DSN may hold a password: ``scrub`` takes it out of any text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dropq.errors import WorkerError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PgPool",
    "PoolBusy",
    "describe_error",
    "CONNECT_TIMEOUT_S",
    "POOL_SIZE",
    "POOL_WAIT_S",
    "STATEMENT_TIMEOUT_MS",
]

# libpq's connect_timeout: a database that does not answer fails the attempt (transient) instead of hanging.
CONNECT_TIMEOUT_S = 5
# No statement may hold a worker longer than this (a lock held by someone else, say).
STATEMENT_TIMEOUT_MS = 30_000
# Connections per worker process and owner: a few in parallel, never one per thread (a process runs 64,
# a Postgres server allows 100 connections by default).
POOL_SIZE = 4
# A caller waits this long for a free connection, then is told to try later: threads never pile up behind it.
POOL_WAIT_S = 2.0
_REDACTED = "[redacted]"
# Credentials in URL form (scheme://user:password@host) and in key=value form (password=...).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


class PoolBusy(WorkerError):
    """Every connection of this process is in use (its owners turn it into their own error)."""


class PgPool:
    """Up to ``POOL_SIZE`` autocommit connections to one database.

    Args:
        dsn: a libpq connection string or URL.
        setup: run once on each new connection, under an advisory lock named by ``lock_name``.
        lock_name: the advisory lock's name (the table it creates, say).
        connect_timeout_s: how long a connection attempt may take.
    """

    def __init__(
        self,
        dsn: str,
        setup: Callable[[psycopg.Connection[Any]], None],
        lock_name: str,
        *,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
    ) -> None:
        self._dsn = dsn
        self._setup = setup
        self._lock_name = lock_name
        self._connect_timeout_s = connect_timeout_s
        # Celery's thread pool shares the owner: each connection has one user at a time.
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        self._idle: list[psycopg.Connection[Any]] = []
        self._idle_lock = threading.Lock()

    @property
    def idle(self) -> int:
        """Connections open and waiting for a user."""
        return len(self._idle)

    def hold(self, timeout_s: float = 1.0) -> bool:
        """Take a slot for good without a connection (tests: a database that stopped answering)."""
        return self._slots.acquire(timeout=timeout_s)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for the block; a broken one is closed, the others go back to the idle list.

        Raises:
            PoolBusy: every connection was in use for ``POOL_WAIT_S``.
            psycopg.Error: from connecting or from the block.
        """
        if not self._slots.acquire(timeout=POOL_WAIT_S):
            raise PoolBusy(f"all {POOL_SIZE} database connections of this worker are busy")
        connection: psycopg.Connection[Any] | None = None
        try:
            connection = self._take()
            yield connection
        except BaseException as exc:
            if connection is not None and (connection.broken or _is_connection_error(exc)):
                connection.close()  # not handed to the next user
            raise
        finally:
            if connection is not None and not connection.closed:
                with self._idle_lock:
                    self._idle.append(connection)
            self._slots.release()

    def _take(self) -> psycopg.Connection[Any]:
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
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_name,))
                self._setup(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def scrub(self, text: str) -> str:
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


def _is_connection_error(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def describe_error(exc: BaseException) -> str:
    """A database error said without the rows it names: its class, SQLSTATE and primary message only.

    PostgreSQL's full text adds a DETAIL such as ``Failing row contains (...)``: the values of the row,
    contact data, which must not reach a log line or a delivery's reason.
    """
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    state = getattr(exc, "sqlstate", None)
    if primary:
        return f"{type(exc).__name__}" + (f" ({state})" if state else "") + f": {primary}"
    return str(exc).split("\nDETAIL:", 1)[0]
