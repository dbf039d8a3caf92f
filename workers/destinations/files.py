"""File destinations: JSON Lines and CSV, one file per job, written exactly once per unit.

Each unit is written to its own part file atomically (a temporary file, then
``os.replace``), so a unit written twice leaves one copy. When the job
finishes, the parts are merged into ``{directory}/{job_id}.jsonl`` (or
``.csv``; a job id longer than ``MAX_STEM`` characters is shortened to its
start and a hash of the whole, see ``file_stem``) in input order, holding only the parts that overlap at once (a
batch and the rejects of its segment), so memory stays flat whatever the job's
size. On several machines, ``directory`` must be a shared file system.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from dropq.dropcontact import json_codec
from dropq.dropcontact.flatten import FLAT_COLUMNS, flatten_outcome
from dropq.dropcontact.tabular import neutralise_formula
from dropq.workers.destinations.base import DestinationError

__all__ = ["JsonlDestination", "CsvDestination", "file_stem", "MAX_STEM"]

_PART_SUFFIX = ".part"
# Job ids up to this long name their files as they are; longer ones keep this much of their start and a hash.
# (Every name written stays far below the 255 bytes a file system allows.)
MAX_STEM = 64
_KEPT_START = 40


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_stem(job_id: str) -> str:
    """The file name of a job's output without its extension: the id, or its start and a hash when long."""
    if len(job_id) <= MAX_STEM:
        return job_id
    return f"{job_id[:_KEPT_START]}-{_digest(job_id, 20)}"


class _FileDestination:
    """Part files per unit, merged in input order at the end."""

    extension = ""

    def __init__(self, name: str, directory: str | Path) -> None:
        self.name = name
        self.directory = Path(directory)

    def output_path(self, job_id: str) -> Path:
        """Where the job's file lands when the job finishes."""
        return self.directory / f"{file_stem(job_id)}{self.extension}"

    def _parts_dir(self, job_id: str) -> Path:
        return self.directory / f".{file_stem(job_id)}{self.extension}.parts"

    def deliver(self, job_id: str, unit_id: str, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """Write the unit's part file (again, harmlessly, after a crash)."""
        if not outcomes:
            return
        ordered = sorted(outcomes, key=lambda o: int(o["index"]))
        first = int(ordered[0]["index"])
        # The unit's id holds the job's: a digest keeps the name short and free of '/'.
        target = self._parts_dir(job_id) / f"{first:012d}-{_digest(unit_id, 20)}{_PART_SUFFIX}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                for outcome in ordered:
                    out.write(json_codec.dumps(outcome) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise DestinationError(self.name, f"cannot write {target}: {exc.strerror or exc}") from exc

    def finish(self, job_id: str) -> None:
        """Merge the parts into the job's file, in input order, then remove them."""
        parts_dir = self._parts_dir(job_id)
        target = self.output_path(job_id)
        try:
            if not parts_dir.exists():
                # No unit was written (an empty job, or a directory that never could be): an empty file.
                if not target.exists():
                    self._write_all(target, iter(()))
                return
            parts = sorted(parts_dir.glob(f"*{_PART_SUFFIX}"))
            self._write_all(target, _merge_in_order(parts))
            # Out of the way in one step: a finish run again after a crash in the middle of the removal
            # finds no parts and keeps the merged file, instead of merging what is left over it.
            merged = parts_dir.with_name(f"{parts_dir.name}.merged-{os.getpid()}-{threading.get_ident()}")
            os.replace(parts_dir, merged)
        except OSError as exc:
            raise DestinationError(self.name, f"cannot write {target}: {exc.strerror or exc}") from exc
        shutil.rmtree(merged, ignore_errors=True)

    def _write_all(self, target: Path, outcomes: Iterator[dict[str, Any]]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            self._write(out, outcomes)
        os.replace(tmp, target)

    def _write(self, out: TextIO, outcomes: Iterator[dict[str, Any]]) -> None:
        raise NotImplementedError


def _merge_in_order(parts: list[Path]) -> Iterator[dict[str, Any]]:
    """Yield the outcomes of sorted part files in index order, opening a part only when it is needed."""
    heap: list[tuple[int, int, dict[str, Any], Iterator[str], io.TextIOWrapper]] = []
    pending = iter(parts)
    upcoming = next(pending, None)
    serial = 0

    def push(lines: Iterator[str], handle: io.TextIOWrapper) -> None:
        nonlocal serial
        line = next(lines, None)
        if line is None:
            handle.close()
            return
        outcome = json_codec.loads(line)
        serial += 1
        heapq.heappush(heap, (int(outcome["index"]), serial, outcome, lines, handle))

    while heap or upcoming is not None:
        # A part starting at or before the smallest index waiting must join the merge first.
        while upcoming is not None and (not heap or int(upcoming.name.split("-", 1)[0]) <= heap[0][0]):
            handle = upcoming.open(encoding="utf-8")
            push(iter(handle), handle)  # type: ignore[arg-type]
            upcoming = next(pending, None)
        if not heap:
            continue
        _, _, outcome, lines, handle = heapq.heappop(heap)
        yield outcome
        push(lines, handle)


class JsonlDestination(_FileDestination):
    """One JSON object per line: the full outcome (status, reason, enriched record, input)."""

    extension = ".jsonl"

    def _write(self, out: TextIO, outcomes: Iterator[dict[str, Any]]) -> None:
        for outcome in outcomes:
            out.write(json_codec.dumps(outcome) + "\n")


class CsvDestination(_FileDestination):
    """One row per record: index, status, reason and the enriched fields, flattened.

    Cells a spreadsheet would run as a formula get a leading ``'`` (``escape_formulas = false`` in
    the destination's entry writes them raw).
    """

    extension = ".csv"

    def __init__(self, name: str, directory: str | Path, *, escape_formulas: bool = True) -> None:
        super().__init__(name, directory)
        self._cell = neutralise_formula if escape_formulas else str

    def _write(self, out: TextIO, outcomes: Iterator[dict[str, Any]]) -> None:
        writer = csv.DictWriter(out, fieldnames=["index", "status", "reason", *FLAT_COLUMNS], extrasaction="ignore")
        writer.writeheader()
        for outcome in outcomes:
            row: dict[str, Any] = {"index": outcome["index"], "status": outcome["status"]}
            row["reason"] = self._cell(outcome.get("reason") or "")
            row.update({name: self._cell(value) if isinstance(value, str) else value
                        for name, value in flatten_outcome(outcome).items()})  # fmt: skip
            writer.writerow(row)
