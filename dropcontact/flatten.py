"""Flatten an enriched record into text columns for CSV output (pure).

Columns: the best email and its qualification, the other emails, then the
person, phones, company, web and registry fields. Absent keys give empty
cells: the API only returns what it found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dropq.dropcontact.qualification import best_email, parse_emails

__all__ = ["FLAT_COLUMNS", "REGISTRY_COLUMNS", "flatten_record", "flatten_outcome"]

# Columns that only the ``siren`` option (the French company registry) fills.
REGISTRY_COLUMNS: tuple[str, ...] = (
    "siren",
    "siret",
    "siret_address",
    "siret_zip",
    "siret_city",
    "vat",
    "nb_employees",
    "naf5_code",
    "naf5_des",
    "company_turnover",
    "company_results",
)

_PLAIN_FIELDS: tuple[str, ...] = (
    "civility",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "mobile_phone",
    "company",
    "website",
    "linkedin",
    "company_linkedin",
    "job",
    "job_level",
    "job_function",
    "country",
    *REGISTRY_COLUMNS,
)

FLAT_COLUMNS: tuple[str, ...] = ("email", "email_qualification", "other_emails", *_PLAIN_FIELDS)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)


def flatten_record(record: Mapping[str, Any] | None) -> dict[str, str]:
    """Return the flat columns of an enriched record (every column present, empty when unknown)."""
    row = dict.fromkeys(FLAT_COLUMNS, "")
    if not record:
        return row
    emails = parse_emails(record.get("email"))
    best = best_email(emails)
    if best is not None:
        row["email"] = best.email
        row["email_qualification"] = best.qualification.raw
    row["other_emails"] = ";".join(e.email for e in emails if best is None or e.email != best.email)
    for name in _PLAIN_FIELDS:
        row[name] = _text(record.get(name))
    return row


def flatten_outcome(outcome: Mapping[str, Any]) -> dict[str, str]:
    """Flatten the record of an outcome (``{"status", "record", ...}``); rejected ones give empty cells."""
    record = outcome.get("record")
    return flatten_record(record if isinstance(record, Mapping) else None)
