"""Putting each result back with the record it came from.

The API returns ``data`` "ordered by input index" and echoes ``custom_fields``
unchanged, but it drops empty keys and rewrites values (names, domains,
LinkedIn URLs), so values are never join keys. A result is joined to a sent
record by index when the correlation id in its ``custom_fields`` agrees (or
when the API sent none back and no other result claims the record); when the
index disagrees, by correlation id alone. Each result joins at most one
record, and a record without a result is reported as ``missing``, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dropq.dropcontact.qualification import EmailResult, best_email, parse_emails
from dropq.dropcontact.records import CORRELATION_FIELD

__all__ = ["JoinStatus", "JoinedRecord", "join_results", "correlation_id_of", "credits_kept"]


class JoinStatus(StrEnum):
    """What became of one sent record."""

    ENRICHED = "enriched"  # a result with a usable email (``qualification.best_email`` picks one)
    NOT_FOUND = "not_found"  # a result, but no usable email: none, or only invalid / do-not-contact / disposable
    MISSING = "missing"  # no result came back for this record


def credits_kept(outcomes: Iterable[Mapping[str, Any]]) -> int:
    """The credits the API keeps for these outcomes (pay on success): 1 for an email sent to verify, whatever
    is found, or for an email found; 0 otherwise (not found, or never answered)."""
    return sum(
        1 for o in outcomes if o["status"] != "failed" and (bool(o["input"].get("email")) or o["status"] == "enriched")
    )


@dataclass(frozen=True, slots=True)
class JoinedRecord:
    """One sent record with its result.

    ``index`` is the record's position in the batch as sent.
    """

    index: int
    correlation_id: str | None
    input: dict[str, Any]
    result: dict[str, Any] | None
    emails: tuple[EmailResult, ...]
    status: JoinStatus

    @property
    def best_email(self) -> EmailResult | None:
        """The address most worth writing to (see ``qualification.best_email``)."""
        return best_email(self.emails)


def correlation_id_of(record: Mapping[str, Any]) -> str | None:
    """Read our correlation id from a record's ``custom_fields``.

    Args:
        record: a sent record or an enriched one.

    Returns:
        The id as a string, or None when the record carries none.
    """
    # dict first: decoded JSON always is one, and the Mapping check (an ABC's) is ten times slower.
    custom_fields = record.get("custom_fields") if isinstance(record, dict | Mapping) else None
    if not isinstance(custom_fields, dict | Mapping):
        return None
    value = custom_fields.get(CORRELATION_FIELD)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _find_match(
    position: int,
    wanted: str | None,
    result_ids: Sequence[str | None],
    first_by_id: Mapping[str, int],
    used: set[int],
) -> int | None:
    if position < len(result_ids) and position not in used:
        found = result_ids[position]
        if found is not None and found == wanted:
            return position
        # No id came back: trust the documented order, unless another result carries this record's id.
        if found is None and (wanted is None or wanted not in first_by_id):
            return position
    if wanted is not None:
        elsewhere = first_by_id.get(wanted)
        if elsewhere is not None and elsewhere not in used:
            return elsewhere
    return None


def join_results(sent: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> list[JoinedRecord]:
    """Join a batch's results to the records sent.

    Args:
        sent: the ``data`` array as submitted, correlation ids in ``custom_fields``.
        results: the ``data`` array the API returned (or a webhook delivered).

    Returns:
        One ``JoinedRecord`` per sent record, in sent order; results that match
        no sent record are not ours and are left out.
    """
    result_ids = [correlation_id_of(result) for result in results]
    first_by_id: dict[str, int] = {}
    for position, found in enumerate(result_ids):
        if found is not None:
            first_by_id.setdefault(found, position)
    used: set[int] = set()
    joined: list[JoinedRecord] = []
    for position, record in enumerate(sent):
        wanted = correlation_id_of(record)
        match = _find_match(position, wanted, result_ids, first_by_id, used)
        if match is None:
            joined.append(JoinedRecord(position, wanted, dict(record), None, (), JoinStatus.MISSING))
            continue
        used.add(match)
        result = dict(results[match])
        emails = tuple(parse_emails(result.get("email")))
        # An address nobody should write to (invalid, do not contact, disposable) is not an enrichment.
        status = JoinStatus.ENRICHED if best_email(emails) is not None else JoinStatus.NOT_FOUND
        joined.append(JoinedRecord(position, wanted, dict(record), result, emails, status))
    return joined
