"""Input and output files of ``dropq enrich``, read and written as streams.

The input is read row by row with the line number where each row starts, the
same way every time (``dropq enrich`` reads it twice: once to send, once to
write the output), so the n-th readable row is always the job's record n.
A row that cannot be read (bad JSON, bytes that are not UTF-8, more fields than
the header, a field over the CSV limit) comes out with ``error`` set and is
never sent; the rest of the file goes on.

Formats: CSV (delimiter detected, UTF-8 with or without BOM, other encodings
by name) and JSON Lines (one object per line, UTF-8).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dropq.cli.checks import USER_ERROR, CliError
from dropq.dropcontact.flatten import flatten_outcome
from dropq.dropcontact.tabular import (
    detect_delimiter,
    neutralise_formula,
    output_cells,
    output_columns,
    unreadable_reason,
)

__all__ = [
    "InputError",
    "InputRow",
    "InputFile",
    "OutputFile",
    "format_for_path",
    "copy_stdin_to_temp",
]

# The start of a CSV file that delimiter detection looks at.
_SNIFF_CHARS = 64 * 1024
# Extensions read and written as JSON Lines; anything else is CSV.
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
# Bytes that did not decode, as surrogateescape leaves them in text.
_UNDECODED = re.compile("[\udc80-\udcff]")
# A cell may be as long as a record may be (15 kB), with room to spare; Python's default is 128 kB.
_CSV_FIELD_LIMIT = 1024 * 1024
# A quoted cell spanning more lines than this is taken for a quote never closed.
_MAX_CELL_LINES = 100
# What an unreadable row keeps of a cell, at most (a 5 MB cell is left out, its neighbours kept).
_KEPT_CELL_CHARS = 64 * 1024


class _Lines:
    """The file's physical lines for the csv reader, with the lines of the current row kept and a push-back."""

    def __init__(self, handle: IO[str]) -> None:
        self._lines = iter(handle)
        self._back: list[str] = []
        self._span: list[str] = []
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = self._back.pop() if self._back else next(self._lines)
        self.count += 1
        self._span.append(text)
        return text

    def start_row(self) -> None:
        """A new row starts: forget the lines of the last one."""
        self._span = []

    def take_span(self) -> list[str]:
        """The lines the current row was read from."""
        return self._span

    def push_back(self, texts: list[str]) -> None:
        """Give lines back, to be read again in order."""
        self._back.extend(reversed(texts))
        self.count -= len(texts)


def _runs_to_the_end(span: list[str], delimiter: str) -> bool:
    """Whether a multi-line row only ended because the file did (its quote is never closed)."""
    try:
        for _ in csv.reader(span, delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


class InputError(CliError):
    """The input file as a whole cannot be used (missing, unreadable, no header); exit status 2."""

    def __init__(self, message: str, exit_code: int = USER_ERROR) -> None:
        super().__init__(message, exit_code)


@dataclass(frozen=True, slots=True)
class InputRow:
    """One row of the input.

    ``cells`` (CSV) or ``obj`` (JSON Lines) holds what was read; ``error`` says
    why the row cannot be used, in which case it is not sent.
    """

    line: int
    cells: list[str] | None = None
    obj: dict[str, Any] | None = None
    error: str | None = None

    @property
    def is_readable(self) -> bool:
        """Whether the row can be sent."""
        return self.error is None


def format_for_path(path: str, default: str = "csv") -> str:
    """``jsonl`` for ``.jsonl``/``.ndjson``/``.json`` names, ``csv`` for ``.csv``/``.tsv``, else ``default``."""
    suffix = Path(path).suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    return default


def copy_stdin_to_temp(directory: str | None = None) -> Path:
    """Copy standard input to a temporary file (the input is read twice); the caller removes it."""
    handle = tempfile.NamedTemporaryFile(prefix="dropq-stdin-", dir=directory, delete=False)  # noqa: SIM115
    with handle:
        shutil.copyfileobj(sys.stdin.buffer, handle, 1024 * 1024)
    return Path(handle.name)


def _sniff_format(path: Path) -> str:
    with path.open("rb") as handle:
        start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if start.startswith(b"{") else "csv"


def _has_content(path: Path) -> bool:
    """Whether the file holds anything but whitespace and a BOM (read in chunks: a huge file stops at once)."""
    with path.open("rb") as handle:
        first = True
        while chunk := handle.read(_SNIFF_CHARS):
            if first:
                chunk, first = chunk.removeprefix(b"\xef\xbb\xbf"), False
            if chunk.strip():
                return True
    return False


def _clean_text(text: str) -> str:
    # Undecodable bytes become U+FFFD in the output, which must be valid text.
    if _UNDECODED.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class InputFile:
    """A CSV or JSON Lines file, read as a stream of ``InputRow`` (as often as needed, always the same way).

    Args:
        path: the file.
        fmt: ``csv``, ``jsonl``, or None to decide by extension (then by the first byte).
        encoding: a Python codec name for CSV; None reads UTF-8 with or without BOM.
        delimiter: the CSV delimiter; None detects it.

    Raises:
        InputError: the file is missing, unreadable, or has no header.
    """

    def __init__(
        self, path: Path, *, fmt: str | None = None, encoding: str | None = None, delimiter: str | None = None
    ) -> None:
        self.path = path
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a file")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: permission denied")
        self.format = fmt or format_for_path(str(path), default="") or _sniff_format(path)
        self.encoding = encoding or "utf-8-sig"
        try:
            "".encode(self.encoding)
        except LookupError as exc:
            raise InputError(f"--encoding {encoding!r}: not an encoding Python knows") from exc
        self.delimiter = delimiter or ""
        self.columns: list[str] = []
        if self.format == "csv":
            self._read_header()
        elif not _has_content(path):
            # As for CSV: an empty file is a mistake to say, not a job of no rows (a header-only CSV is one).
            raise InputError(f"{path}: the file is empty (a JSON Lines file needs one object per line)")

    def _open_text(self) -> IO[str]:
        # surrogateescape keeps reading past bytes that do not decode; the row holding them is reported.
        return self.path.open(encoding=self.encoding, errors="surrogateescape", newline="")

    def _read_header(self) -> None:
        with self._open_text() as handle:
            sample = handle.read(_SNIFF_CHARS)
        if not sample.strip():
            raise InputError(f"{self.path}: the file is empty (a CSV file needs a header line)")
        if not self.delimiter:
            self.delimiter = detect_delimiter(sample)
        with self._open_text() as handle:
            header = next(csv.reader(handle, delimiter=self.delimiter), [])
        if _UNDECODED.search("".join(header)):
            raise InputError(f"{self.path}: the header is not valid {self.encoding}; give --encoding (e.g. cp1252)")
        self.columns = [name.strip() for name in header]
        if not any(self.columns):
            raise InputError(f"{self.path}: line 1 must be a header naming the columns")

    def rows(self) -> Iterator[InputRow]:
        """Every row after the header (blank lines skipped), with the line where it starts."""
        return self._csv_rows() if self.format == "csv" else self._jsonl_rows()

    def _csv_rows(self) -> Iterator[InputRow]:
        """Every CSV row; a row the csv module cannot read is reported with what can be kept of it.

        Two reads would swallow the rows after them and are caught: a quote that is never closed
        (the field runs to the end of the file, or over ``_MAX_CELL_LINES`` lines, or past the size
        limit) reports its first line alone and the reading starts again on the line after it; a
        cell over the size limit reports its row with its other cells kept.
        """
        csv.field_size_limit(_CSV_FIELD_LIMIT)
        width = len(self.columns)
        with self._open_text() as handle:
            lines = _Lines(handle)
            reader = csv.reader(lines, delimiter=self.delimiter)
            next(reader, None)
            while True:
                lines.start_row()
                line = lines.count + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    span = lines.take_span()
                    if len(span) > 1:
                        yield self._unterminated(line, span, lines)
                        reader = csv.reader(lines, delimiter=self.delimiter)
                        continue
                    yield self._unreadable_line(line, span[0] if span else "", f"not valid CSV ({exc})")
                    continue
                span = lines.take_span()
                if len(span) > 1 and (len(span) > _MAX_CELL_LINES or _runs_to_the_end(span, self.delimiter)):
                    yield self._unterminated(line, span, lines)
                    reader = csv.reader(lines, delimiter=self.delimiter)
                    continue
                if not cells or (len(cells) == 1 and not cells[0].strip() and width > 1):
                    continue
                yield self._check_csv_row(line, cells, width)

    def _unterminated(self, line: int, span: list[str], lines: _Lines) -> InputRow:
        """The first line of a quote never closed, reported alone; the lines after it go back to be read."""
        lines.push_back(span[1:])
        return self._unreadable_line(line, span[0], 'a quote (") opened here is never closed')

    def _unreadable_line(self, line: int, text: str, why: str) -> InputRow:
        """An unreadable row with what can be kept of its cells (split on the delimiter, each cut to the limit)."""
        cells = [_clean_text(cell) for cell in text.rstrip("\r\n").split(self.delimiter)][: len(self.columns)]
        if any(len(cell) > _KEPT_CELL_CHARS for cell in cells):
            why += f"; cells over {_KEPT_CELL_CHARS:,} characters are left out of the output"
        kept = [cell if len(cell) <= _KEPT_CELL_CHARS else "" for cell in cells]
        return InputRow(line, cells=kept, error=unreadable_reason(line, why))

    def _check_csv_row(self, line: int, cells: list[str], width: int) -> InputRow:
        if _UNDECODED.search("\x1f".join(cells)):
            clean = [_clean_text(cell) for cell in cells]
            why = f"not valid {self.encoding.removesuffix('-sig')} text; give --encoding if the file is not UTF-8"
            return InputRow(line, cells=clean, error=unreadable_reason(line, why))
        if any("\x00" in cell for cell in cells):
            why = "a NUL byte (0x00) in a cell: not a text file, or a broken one"
            return InputRow(
                line, cells=[cell.replace("\x00", "") for cell in cells], error=unreadable_reason(line, why)
            )
        if len(cells) > width:
            why = f"{len(cells)} fields where the header has {width} (an unquoted {self.delimiter!r} in a value?)"
            return InputRow(line, cells=cells, error=unreadable_reason(line, why))
        return InputRow(line, cells=cells)

    def _jsonl_rows(self) -> Iterator[InputRow]:
        with self.path.open("rb") as handle:
            for line, raw in enumerate(handle, start=1):
                data = raw.removeprefix(b"\xef\xbb\xbf") if line == 1 else raw
                if not data.strip():
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    why = f"not valid UTF-8 (byte 0x{data[exc.start]:02X} at position {exc.start + 1})"
                    yield InputRow(line, obj={}, error=unreadable_reason(line, why))
                    continue
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    yield InputRow(line, obj={}, error=unreadable_reason(line, f"not valid JSON ({exc})"))
                    continue
                if not isinstance(value, dict):
                    why = f"a JSON object was expected, got {type(value).__name__}"
                    yield InputRow(line, obj={}, error=unreadable_reason(line, why))
                    continue
                yield InputRow(line, obj=value)

    def jsonl_columns(self) -> list[str]:
        """The keys of every JSON Lines object, in order of first appearance (the CSV header of a JSONL input)."""
        seen: dict[str, None] = {}
        for row in self._jsonl_rows():
            for key in row.obj or {}:
                seen.setdefault(key, None)
        return list(seen)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class OutputFile:
    """The output of a job, one row per input row in input order, written to a temporary file then renamed.

    Args:
        path: the file to write; None writes to standard output.
        fmt: ``csv`` or ``jsonl``.
        input_columns: the input's columns (the first columns of a CSV output).
        siren: whether registry columns are included.
        job_id: the job, named in every JSON Lines row.
        delimiter: the CSV delimiter (the input's, so the output opens the same way).
        escape_formulas: whether CSV cells that a spreadsheet would run get a leading ``'``.
        source: whether a CSV output has a ``source`` column (a result cache is in use).
    """

    def __init__(
        self,
        path: Path | None,
        fmt: str,
        input_columns: Sequence[str],
        *,
        siren: bool,
        job_id: str | None = None,
        delimiter: str = ",",
        escape_formulas: bool = True,
        source: bool = False,
    ) -> None:
        self.path = path
        self.source = source
        self.job_id = job_id
        self.format = fmt
        self.input_columns = list(input_columns)
        self.siren = siren
        self.rows_written = 0
        self._temp: Path | None = None
        if path is None:
            self._handle: IO[str] = sys.stdout
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._temp = path.with_name(f".{path.name}.partial")
            self._handle = self._temp.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._handle, delimiter=delimiter) if fmt == "csv" else None
        self._cell = neutralise_formula if escape_formulas else str
        if self._csv is not None:
            self._csv.writerow([self._cell(c) for c in output_columns(self.input_columns, siren=siren, source=source)])

    def write(self, row: InputRow, outcome: Mapping[str, Any] | None) -> None:
        """Write the output row of one input row and its outcome (None: the pipeline gave none)."""
        if self._csv is not None:
            cells = (
                row.cells if row.cells is not None else [_cell_text((row.obj or {}).get(c)) for c in self.input_columns]
            )
            cells = output_cells(cells, len(self.input_columns), outcome, siren=self.siren, source=self.source)
            self._csv.writerow([self._cell(c) for c in cells])
        else:
            self._handle.write(json.dumps(self._jsonl_row(row, outcome or {}), ensure_ascii=False) + "\n")
        self.rows_written += 1

    def _jsonl_row(self, row: InputRow, outcome: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline's outcome shape (``OUTCOME_KEYS``) plus ``line``; ``input`` is the row as read, all columns."""
        given = row.obj if row.obj is not None else dict(zip(self.input_columns, row.cells or [], strict=False))
        flat = flatten_outcome(outcome)
        return {
            "job_id": self.job_id,
            "index": outcome.get("index"),  # None for a row that could not be read (never sent)
            "line": row.line,
            "status": outcome.get("status") or "failed",
            "reason": outcome.get("reason"),
            "best_email": flat["email"] or None,
            "qualification": flat["email_qualification"] or None,
            "record": outcome.get("record"),
            "input": given,
            "source": outcome.get("source"),
            **({"fetched_at": outcome["fetched_at"]} if outcome.get("fetched_at") else {}),
        }

    def commit(self) -> None:
        """Finish the file: flush, close and move it into place."""
        self._handle.flush()
        if self._temp is not None and self.path is not None:
            self._handle.close()
            self._temp.replace(self.path)
            self._temp = None

    def discard(self) -> None:
        """Drop a half-written file."""
        if self._temp is not None:
            self._handle.close()
            self._temp.unlink(missing_ok=True)
            self._temp = None
