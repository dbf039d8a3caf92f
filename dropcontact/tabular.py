"""Tables in and out of the API (pure): column mapping, contacts from rows, output rows, delimiter detection.

What ``dropq enrich`` needs to turn a user's file into contacts and back,
without reading a file, the environment or a clock:

* ``map_columns`` names the API field of each column (``First Name`` →
  ``first_name``, ``E-mail`` → ``email``) by ``records.canonical_field``, with
  ``--map "Column=field"`` overrides; a column that maps to nothing is kept
  for the output and never sent.
* ``contact_from_cells`` / ``contact_from_object`` build the contact the API
  receives: mapped fields only, non-empty values only, the first non-empty
  column winning when two map to the same field.
* ``output_columns`` and ``output_cells`` lay out an output row: the input
  columns, then the enriched columns of ``flatten.FLAT_COLUMNS`` (registry
  fields only when SIREN enrichment was asked), then ``status`` and ``reason``.
  An enriched column whose name an input column already uses gets the prefix
  ``enriched_``, so no CSV reader ever sees two columns of one name.
* ``detect_delimiter`` picks the delimiter of a CSV sample.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dropq.dropcontact.flatten import FLAT_COLUMNS, REGISTRY_COLUMNS, flatten_outcome
from dropq.dropcontact.records import INPUT_FIELDS, canonical_field
from dropq.errors import InvalidValueError

__all__ = [
    "FORMULA_PREFIXES",
    "neutralise_formula",
    "ColumnMappingError",
    "ColumnMap",
    "REGISTRY_COLUMNS",
    "STATUS_COLUMN",
    "REASON_COLUMN",
    "ENRICHED_PREFIX",
    "CANDIDATE_DELIMITERS",
    "parse_map_overrides",
    "map_columns",
    "contact_from_cells",
    "contact_from_object",
    "enriched_columns",
    "output_columns",
    "output_cells",
    "unreadable_reason",
    "reason_with_lines",
    "detect_delimiter",
    "strip_bom",
]

STATUS_COLUMN = "status"
REASON_COLUMN = "reason"
# Where an answer came from (api, cache): a column of its own when a result cache is in use.
SOURCE_COLUMN = "source"
# Put before an enriched column's name when an input column already has that name.
ENRICHED_PREFIX = "enriched_"
# Delimiters seen in exported contact lists, in order of preference on a tie.
CANDIDATE_DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
# The UTF-8 byte order mark as text (what Excel puts at the start of "CSV UTF-8").
_BOM = "\ufeff"
# How the pipeline names a record in its reasons ("record 12: ..."): by its index in the job.
_RECORD_REF = re.compile(r"\brecord (\d+)\b")
# Values of a --map override that mean "never send this column".
_IGNORE_VALUES = ("", "-", "none", "ignore")


class ColumnMappingError(InvalidValueError):
    """A ``--map`` override cannot be used; the message shows the override and the rule."""


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """The API field of each column (None: kept for the output, never sent)."""

    columns: tuple[str, ...]
    fields: tuple[str | None, ...]

    @property
    def sent_columns(self) -> tuple[str, ...]:
        """The columns whose values go to the API."""
        return tuple(c for c, f in zip(self.columns, self.fields, strict=True) if f is not None)

    @property
    def kept_columns(self) -> tuple[str, ...]:
        """The columns kept for the output only."""
        return tuple(c for c, f in zip(self.columns, self.fields, strict=True) if f is None)


def parse_map_overrides(specs: Iterable[str]) -> dict[str, str | None]:
    """Parse ``Column=field`` overrides; ``Column=`` (or ``=-``) keeps a column out of the API.

    Args:
        specs: the ``--map`` values, e.g. ``["Société=company", "Notes="]``.

    Returns:
        Column name → field name, or None for a column never sent.

    Raises:
        ColumnMappingError: no ``=``, an empty column name, or a field the API does not know.
    """
    overrides: dict[str, str | None] = {}
    for spec in specs:
        column, sep, target = spec.partition("=")
        if not sep or not column.strip():
            raise ColumnMappingError("--map", spec, "COLUMN=FIELD, e.g. 'Société=company'")
        name = target.strip()
        if name.casefold() in _IGNORE_VALUES:
            overrides[column.strip()] = None
            continue
        field_name = name if name in INPUT_FIELDS else canonical_field(name)
        if field_name is None:
            known = ", ".join(sorted(INPUT_FIELDS))
            raise ColumnMappingError("--map", spec, f"COLUMN=FIELD with an API field (known: {known}; empty to ignore)")
        overrides[column.strip()] = field_name
    return overrides


def map_columns(columns: Sequence[str], overrides: Mapping[str, str | None] | None = None) -> ColumnMap:
    """Name the API field of each column: an override by exact name first, else the common names.

    Args:
        columns: the header, in file order.
        overrides: from ``parse_map_overrides``.

    Returns:
        The mapping; columns that match nothing map to None.
    """
    chosen = overrides or {}
    fields = tuple(chosen[c] if c in chosen else canonical_field(c) for c in columns)
    return ColumnMap(columns=tuple(columns), fields=fields)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == {}


def contact_from_cells(cells: Sequence[str], mapping: ColumnMap) -> dict[str, Any]:
    """The contact of one CSV row: mapped fields with a non-empty value, the first column winning.

    Args:
        cells: the row's values, in column order (a short row is read as empty cells at its end).
        mapping: from ``map_columns``.

    Returns:
        API field → trimmed value.
    """
    contact: dict[str, Any] = {}
    for field_name, value in zip(mapping.fields, cells, strict=False):
        if field_name is None or field_name in contact or _is_empty(value):
            continue
        contact[field_name] = _parse_custom_fields(value) if field_name == "custom_fields" else value.strip()
    return contact


def _parse_custom_fields(value: str) -> Any:
    # A CSV cell can only hold custom_fields as JSON text; anything else goes as is, for validation to reject.
    try:
        return json.loads(value)
    except ValueError:
        return value


def contact_from_object(obj: Mapping[str, Any], overrides: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The contact of one JSON Lines object: mapped keys with a non-empty value, the first key winning.

    Values keep their JSON type (numbers, objects): the pipeline's validation
    coerces what it can and rejects the rest with a reason.

    Args:
        obj: the parsed line.
        overrides: from ``parse_map_overrides``.

    Returns:
        API field → value.
    """
    chosen = overrides or {}
    contact: dict[str, Any] = {}
    for key, value in obj.items():
        field_name = chosen[key] if key in chosen else canonical_field(key)
        if field_name is None or field_name in contact or _is_empty(value):
            continue
        contact[field_name] = value.strip() if isinstance(value, str) else value
    return contact


def enriched_columns(*, siren: bool) -> tuple[str, ...]:
    """The enriched fields of an output row, registry fields only when SIREN enrichment was asked."""
    if siren:
        return FLAT_COLUMNS
    return tuple(c for c in FLAT_COLUMNS if c not in REGISTRY_COLUMNS)


def output_columns(input_columns: Sequence[str], *, siren: bool, source: bool = False) -> list[str]:
    """The header of the output: input columns, enriched columns, status and reason (and source, with a cache).

    An added column whose name (case aside) an input column uses is renamed
    ``enriched_<name>`` (``dropq_<name>`` for status, reason and source).
    """
    taken = {c.casefold() for c in input_columns}
    added = [f"{ENRICHED_PREFIX}{c}" if c.casefold() in taken else c for c in enriched_columns(siren=siren)]
    ends = (STATUS_COLUMN, REASON_COLUMN, SOURCE_COLUMN) if source else (STATUS_COLUMN, REASON_COLUMN)
    tail = [f"dropq_{c}" if c.casefold() in taken else c for c in ends]
    return [*input_columns, *added, *tail]


def output_cells(
    input_cells: Sequence[str], width: int, outcome: Mapping[str, Any] | None, *, siren: bool, source: bool = False
) -> list[str]:
    """One output row: the input cells (padded or cut to ``width``), the enriched cells, status and reason.

    Args:
        input_cells: the row as read.
        width: the number of input columns.
        outcome: the pipeline's outcome for the row (``status``, ``reason``, ``record``).
        siren: whether registry columns are in the output.
        source: whether the source column is (a result cache is in use).
    """
    cells = [*input_cells[:width], *([""] * (width - len(input_cells)))]
    flat = flatten_outcome(outcome or {})
    cells.extend(flat[c] for c in enriched_columns(siren=siren))
    status = str((outcome or {}).get("status") or "failed")
    reason = (outcome or {}).get("reason")
    cells.extend((status, "" if reason is None else str(reason)))
    if source:
        cells.append(str((outcome or {}).get("source") or ""))
    return cells


def unreadable_reason(line: int, why: str) -> str:
    """The reason given to a row the reader could not use (it is never sent)."""
    return f"line {line}: unreadable row: {why}"


def reason_with_lines(reason: str, line_of: Callable[[int], int | None]) -> str:
    """Name records by their line in the file instead of their index in the job.

    Args:
        reason: the pipeline's reason, e.g. ``"record 7: duplicate of record 3 (same email)"``.
        line_of: the line of a job index, or None when unknown (the reference is then left as it is).

    Returns:
        E.g. ``"line 9: duplicate of line 5 (same email)"``.
    """

    def replace(match: re.Match[str]) -> str:
        line = line_of(int(match.group(1)))
        return match.group(0) if line is None else f"line {line}"

    return _RECORD_REF.sub(replace, reason)


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def detect_delimiter(sample: str, default: str = ",") -> str:
    """Pick the delimiter of a CSV sample: the candidate found most in the header, and as often in the next lines.

    Args:
        sample: the start of the file (a few kB are enough), BOM or not.
        default: what a one-column file (no candidate in the header) uses.

    Returns:
        One of ``CANDIDATE_DELIMITERS``, or ``default``.
    """
    lines = [line for line in strip_bom(sample).splitlines() if line.strip()]
    if not lines:
        return default
    header, rest = lines[0], lines[1:20]
    best, best_score = default, (0, 0)
    for candidate in CANDIDATE_DELIMITERS:
        in_header = _count_outside_quotes(header, candidate)
        if not in_header:
            continue
        # Rows that agree with the header's count; the last line of a sample may be cut short.
        agreeing = sum(1 for line in rest if _count_outside_quotes(line, candidate) == in_header)
        score = (agreeing, in_header)
        if score > best_score:
            best, best_score = candidate, score
    return best


def strip_bom(text: str) -> str:
    """Drop a leading UTF-8 byte order mark."""
    return text[1:] if text.startswith(_BOM) else text


# A spreadsheet reads a cell beginning with one of these as a formula (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(cell: str) -> str:
    """The cell as a spreadsheet shows it but never runs it: a leading ``'`` before a formula character.

    As OWASP recommends for CSV injection. Numbers such as ``-12`` get it too (a spreadsheet still
    shows them as text ``-12``); pipelines that need raw values turn this off.
    """
    return f"'{cell}" if cell[:1] in FORMULA_PREFIXES else cell
