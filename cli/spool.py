"""A local SQLite file holding a job's outcomes by index, so the CLI's memory stays flat.

``dropq enrich`` moves each outcome from the job's Redis stream into the spool
(then deletes it from the stream, so Redis stays flat too) and, once the job
is finished, reads the spool back in index order beside the input to write the
output. The file is named after the job, in a folder of the user's own under
the system's temporary folder (``dropq-{uid}``, mode 0700, refused when it is
a symlink or someone else's), created 0600 with ``O_EXCL | O_NOFOLLOW``, and
kept until the output is written: a detached run re-attaches and loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from dropq.cli.checks import CliError
from dropq.workers import keys
from dropq.workers.destinations.files import file_stem

__all__ = ["OutcomeSpool", "SpooledOutcome", "StreamCollector", "spool_path_for", "private_folder"]

# Entries read from the stream per XREAD (one SQLite transaction each).
READ_COUNT = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    idx    INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    record TEXT,
    source TEXT,
    fetched_at TEXT
)
"""


def private_folder(parent: str | None = None) -> Path:
    """The user's own working folder, made 0700; refused when it is a symlink, someone else's, or open to others.

    Raises:
        CliError: the folder cannot be trusted (someone may have planted it).
    """
    folder = Path(parent or tempfile.gettempdir()) / f"dropq-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise CliError(f"{folder}: not a private folder of this user (a symlink, someone else's, or open to others)")
    return folder


def spool_path_for(job_id: str, directory: str | None = None) -> Path:
    """The spool file of a job, in the user's private folder (a long job id gets a hashed name)."""
    return private_folder(directory) / f"{file_stem(job_id)}.sqlite"


def _open_private(path: Path) -> None:
    """Create the file 0600 if it is new (never through a symlink); check an existing one is ours and regular."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        return
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        raise CliError(f"{path}: not a regular file of this user; remove it and run again")


@dataclass(frozen=True, slots=True)
class SpooledOutcome:
    """An outcome as kept: index, status, reason and the enriched record as JSON text (or None)."""

    index: int
    status: str
    reason: str | None
    record_json: str | None
    source: str | None = None
    fetched_at: str | None = None

    def as_outcome(self) -> dict[str, Any]:
        """The outcome mapping that ``dropcontact.tabular.output_cells`` takes."""
        record = json.loads(self.record_json) if self.record_json else None
        outcome = {"index": self.index, "status": self.status, "reason": self.reason, "record": record}
        outcome["source"] = self.source
        if self.fetched_at is not None:
            outcome["fetched_at"] = self.fetched_at
        return outcome


class OutcomeSpool:
    """The outcomes of one job, on disk, keyed by index (the same index twice keeps the last).

    Args:
        path: the SQLite file; created when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        _open_private(path)
        self._db = sqlite3.connect(path)
        # One writer, and losing the last transaction in a crash only means reading it again from the stream.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outcomes)")}
        for column in ("source", "fetched_at"):  # a spool an earlier version left (a resumed run)
            if column not in columns:
                self._db.execute(f"ALTER TABLE outcomes ADD COLUMN {column} TEXT")
        self._db.commit()

    def add(self, outcomes: Iterable[dict[str, Any]]) -> int:
        """Store outcomes (one transaction); returns how many were given."""
        rows = [
            (
                int(o["index"]),
                str(o.get("status") or "failed"),
                None if o.get("reason") is None else str(o["reason"]),
                None if o.get("record") is None else json.dumps(o["record"], ensure_ascii=False),
                o.get("source"),
                o.get("fetched_at"),
            )
            for o in outcomes
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def count(self) -> int:
        """How many distinct indices are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM outcomes").fetchone()[0])

    def in_order(self) -> Iterator[SpooledOutcome]:
        """Every stored outcome by increasing index (a cursor: nothing is loaded at once)."""
        cursor = self._db.execute("SELECT idx, status, reason, record, source, fetched_at FROM outcomes ORDER BY idx")
        for row in cursor:
            yield SpooledOutcome(*row)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def remove(self) -> None:
        """Close and delete the file (and SQLite's side files)."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class StreamCollector:
    """Moves a job's outcomes from its Redis stream into the spool, deleting what it stored.

    Args:
        client: Redis (``decode_responses=True``).
        job_id: the job.
        spool: where outcomes go.
    """

    def __init__(self, client: redis.Redis, job_id: str, spool: OutcomeSpool) -> None:
        self._redis = client
        self._key = keys.job_outcomes_key(job_id)
        self._spool = spool
        # Consumed entries are deleted, so a new run reading from the start sees only what is left.
        self._last_id = "0-0"
        self.collected = 0

    def drain(self) -> int:
        """Store every entry in the stream now; returns how many were moved."""
        moved = 0
        while True:
            answer: Any = self._redis.xread({self._key: self._last_id}, count=READ_COUNT)
            if not answer:
                return moved
            entries = answer[0][1]
            self._spool.add(json.loads(fields["o"]) for _, fields in entries)
            ids = [entry_id for entry_id, _ in entries]
            # Only once SQLite has them: a crash between the two reads them again, and the spool keeps the last.
            self._redis.xdel(self._key, *ids)
            self._last_id = ids[-1]
            moved += len(ids)
            self.collected += len(ids)
