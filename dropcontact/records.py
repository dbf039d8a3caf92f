"""Input records: from a user's row to the exact JSON object the API receives, or a reason why not.

``prepare_record`` is the one entry: it maps column names onto the documented
fields (``E-mail`` → ``email``, ``Company Website`` → ``website``, ``siren`` →
``num_siren``), trims and drops empty values, checks the documented rule (a
company identifier, an email or a LinkedIn URL), coerces or rejects
``custom_fields``, tags the record with our correlation id and measures it as
the API will see it. Keys that match no field are kept out of the payload and
reported on the prepared record.

Choices where the docs are silent:

* Numbers are turned into strings (a SIREN or a zip code read as a number);
  NaN (an empty spreadsheet cell) counts as empty; booleans, lists and objects
  in a standard field are rejected.
* ``custom_fields`` values are sent unchanged when they are strings (the API
  echoes them as they are, so they are not trimmed); numbers become their
  decimal text, booleans ``"true"``/``"false"``, None is dropped; nested lists
  or objects are rejected rather than flattened, because a guessed encoding
  would not come back the way the user sent it.
* ``custom_fields[CORRELATION_FIELD]`` belongs to dropq: an incoming value is replaced.
* When two columns map to the same field, the first non-empty one wins.
* An email must look like ``local@domain.tld`` and a LinkedIn URL must contain
  ``linkedin.``: an address the API cannot verify would still cost a credit.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dropq.dropcontact import json_codec
from dropq.dropcontact.identities import identity_key, looks_like_email, strip_accents
from dropq.errors import shown

__all__ = [
    "CORRELATION_FIELD",
    "MAX_RECORD_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_FIELD_CHARS",
    "DEFAULT_MAX_FIELD_CHARS",
    "INPUT_FIELDS",
    "COMPANY_IDENTIFIERS",
    "PreparedRecord",
    "Rejection",
    "RejectionRule",
    "prepare_record",
    "prepare_records",
    "normalize_record",
    "find_unknown_keys",
    "canonical_field",
    "validate_record",
    "record_size_bytes",
    "to_json_bytes",
]

# Our correlation id travels in custom_fields, which the API echoes unchanged.
CORRELATION_FIELD = "dropq_ref"
# The API allows "15 kB" per record, custom_fields included; we read kB as 1024 bytes (its exact measure is not
# documented) and measure the compact UTF-8 JSON the client sends, so what we count is what goes on the wire.
MAX_RECORD_BYTES = 15 * 1024
# The API refuses more than 250 records per request.
MAX_BATCH_RECORDS = 250
# No field sent is longer than this many characters: an email as RFC 5321 allows it, URLs as browsers
# keep them, anything else as no name or title is. (A 10,000-character email would cost a credit.)
MAX_FIELD_CHARS: dict[str, int] = {"email": 254, "website": 2048, "linkedin": 2048, "company_linkedin": 2048}
DEFAULT_MAX_FIELD_CHARS = 1024
# A rejection names at most this many unrecognised fields.
_SHOWN_UNKNOWN = 5

# Every input field the docs name, old and new.
INPUT_FIELDS: frozenset[str] = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "civility",
        "email",
        "linkedin",
        "job",
        "job_function",
        "job_level",
        "mobile_phone",
        "phone",
        "location",
        "company",
        "website",
        "company_linkedin",
        "num_siren",
        "siret",
        "siret_address",
        "siret_zip",
        "siret_city",
        "country",
        "custom_fields",
    }
)
# Any one of these makes a record enrichable, as does an email or a LinkedIn profile.
COMPANY_IDENTIFIERS: tuple[str, ...] = ("company", "website", "company_linkedin", "num_siren", "siret")

# Column names people use, folded like _fold_key (accents, case and punctuation dropped). A bare "url" is left
# unknown on purpose: LinkedIn's own export names the profile "URL", other tools the website.
_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "forename", "prenom"),
    "last_name": ("lastname", "last", "surname", "familyname", "nom", "nomdefamille"),
    "full_name": ("fullname", "name", "contactname", "nomcomplet", "nomprenom", "prenomnom"),
    "civility": ("civility", "salutation", "civilite"),
    "email": ("email", "mail", "emailaddress", "mailaddress", "workemail", "courriel", "adressemail", "adresseemail"),
    "linkedin": (
        "linkedin",
        "linkedinurl",
        "linkedinprofile",
        "linkedinprofileurl",
        "personlinkedin",
        "profilelinkedin",
    ),
    "job": ("job", "jobtitle", "title", "position", "poste", "role", "intitule"),
    "job_function": ("jobfunction", "function", "department", "fonction", "departement"),
    "job_level": ("joblevel", "seniority", "level", "niveau"),
    "mobile_phone": ("mobilephone", "mobile", "cellphone", "cell", "portable", "telephoneportable", "mobilenumber"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "companyphone"),
    "location": ("location", "city", "ville", "localisation", "region"),
    "company": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "entreprise",
        "societe",
        "employer",
        "accountname",
    ),
    "website": ("website", "companywebsite", "domain", "companydomain", "web", "siteweb", "site", "websiteurl"),
    "company_linkedin": ("companylinkedin", "companylinkedinurl", "linkedincompany", "linkedincompanyurl"),
    "num_siren": ("numsiren", "siren", "sirennumber", "numerosiren"),
    "siret": ("siret", "siretnumber", "numsiret", "numerosiret"),
    "siret_address": ("siretaddress", "address", "adresse", "streetaddress"),
    "siret_zip": ("siretzip", "zip", "zipcode", "postalcode", "postcode", "codepostal"),
    "siret_city": ("siretcity",),
    "country": ("country", "countrycode", "pays"),
    "custom_fields": ("customfields",),
}
_FIELD_BY_FOLDED_KEY: dict[str, str] = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class RejectionRule(StrEnum):
    """Why a record cannot be sent; each value names a documented rule or one of ours."""

    NOT_AN_OBJECT = "not_an_object"
    NOT_A_STRING = "not_a_string"
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_EMAIL = "invalid_email"
    INVALID_LINKEDIN = "invalid_linkedin"
    CUSTOM_FIELDS_NOT_AN_OBJECT = "custom_fields_not_an_object"
    CUSTOM_FIELD_NOT_A_STRING = "custom_field_not_a_string"
    TOO_LARGE = "too_large"
    FIELD_TOO_LONG = "field_too_long"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that will not be sent, with the field and the rule it breaks."""

    index: int
    field: str | None
    rule: RejectionRule
    message: str


@dataclass(frozen=True, slots=True)
class PreparedRecord:
    """A record ready for the API.

    ``payload`` is exactly what goes into ``data[]``, our correlation id
    included; ``size_bytes`` is its length on the wire.
    """

    index: int
    payload: dict[str, Any]
    identity_key: str | None
    size_bytes: int
    unknown_keys: tuple[str, ...] = field(default=())

    @property
    def correlation_id(self) -> str:
        """Our id for this record, as sent in ``custom_fields``."""
        return str(self.payload["custom_fields"][CORRELATION_FIELD])


def _fold_key(key: str) -> str:
    return _NON_ALNUM.sub("", strip_accents(key).casefold())


# Column names repeat on every row of an input (and each is asked for twice, to map it and to report it
# unknown): each is mapped once (a bounded cache, so that an input of ever new names costs memory for
# the last few only). It was 4% of a worker's CPU.
@functools.lru_cache(maxsize=4096)
def canonical_field(key: str) -> str | None:
    """Return the documented field a column name stands for.

    Args:
        key: a column name, e.g. ``"E-mail"``, ``"Company Website"`` or ``"prénom"``.

    Returns:
        The field name (``"email"``, ``"website"``, ``"first_name"``), or None for an unknown column.
    """
    return _FIELD_BY_FOLDED_KEY.get(_fold_key(key)) if isinstance(key, str) else None


def _clean_value(value: Any) -> Any:
    """Trim a string; turn a number into text; None for empty. Anything else is returned for validation to reject."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _clean_custom_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    return value


def _clean_custom_fields(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return _clean_value(value)
    cleaned = {str(key): _clean_custom_value(item) for key, item in value.items() if item is not None}
    return {key: item for key, item in cleaned.items() if item is not None}


def normalize_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Map a row's columns onto the documented fields, trimming and dropping empty values.

    Args:
        raw: one input row, with any of the accepted column names.

    Returns:
        The documented fields that hold a value; unknown columns are left out
        (see ``find_unknown_keys``). Values that cannot be coerced are kept for
        ``validate_record`` to reject.
    """
    normalized: dict[str, Any] = {}
    for key, value in raw.items():
        name = canonical_field(key)
        if name is None or name in normalized:
            continue
        cleaned = _clean_custom_fields(value) if name == "custom_fields" else _clean_value(value)
        if cleaned is not None and cleaned != {}:
            normalized[name] = cleaned
    return normalized


def find_unknown_keys(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the columns of a row that match no documented field, in row order.

    Args:
        raw: one input row.

    Returns:
        The unknown column names, as given.
    """
    return tuple(str(key) for key in raw if canonical_field(key) is None)


def validate_record(record: Mapping[str, Any], *, index: int) -> list[Rejection]:
    """Check a normalised record against the documented input rules.

    Args:
        record: the output of ``normalize_record``.
        index: the record's position in the job's input, for the messages.

    Returns:
        Every problem found, in field order; empty when the record can be sent
        (its size is checked by ``prepare_record``, once the correlation id is in).
    """
    problems: list[Rejection] = []
    for name, value in record.items():
        if name == "custom_fields":
            problems.extend(_validate_custom_fields(value, index=index))
        elif not isinstance(value, str):
            message = f"record {index}: {name} must be a string, got {shown(value)}"
            problems.append(Rejection(index, name, RejectionRule.NOT_A_STRING, message))
        elif len(value) > (limit := MAX_FIELD_CHARS.get(name, DEFAULT_MAX_FIELD_CHARS)):
            message = f"record {index}: {name} must be at most {limit} characters, got {len(value)}: {shown(value)}"
            problems.append(Rejection(index, name, RejectionRule.FIELD_TOO_LONG, message))
    email = record.get("email")
    if isinstance(email, str) and not looks_like_email(email):
        message = f"record {index}: email must look like local@domain.tld, got {shown(email)}"
        problems.append(Rejection(index, "email", RejectionRule.INVALID_EMAIL, message))
    for name in ("linkedin", "company_linkedin"):
        url = record.get(name)
        if isinstance(url, str) and "linkedin." not in url.casefold():
            message = f"record {index}: {name} must be a LinkedIn URL, got {shown(url)}"
            problems.append(Rejection(index, name, RejectionRule.INVALID_LINKEDIN, message))
    if not any(isinstance(record.get(name), str) for name in (*COMPANY_IDENTIFIERS, "email", "linkedin")):
        message = (
            f"record {index}: needs a company (company, website, company_linkedin, num_siren or siret), "
            "an email or a linkedin URL"
        )
        problems.append(Rejection(index, None, RejectionRule.MISSING_IDENTIFIER, message))
    return problems


def _validate_custom_fields(value: Any, *, index: int) -> list[Rejection]:
    if not isinstance(value, Mapping):
        message = f"record {index}: custom_fields must be an object of strings, got {shown(value)}"
        return [Rejection(index, "custom_fields", RejectionRule.CUSTOM_FIELDS_NOT_AN_OBJECT, message)]
    return [
        Rejection(
            index,
            f"custom_fields[{shown(key)}]",
            RejectionRule.CUSTOM_FIELD_NOT_A_STRING,
            f"record {index}: custom_fields[{shown(key)}] must be a string, got {shown(item)}",
        )
        for key, item in value.items()
        if not isinstance(item, str)
    ]


def to_json_bytes(value: Any) -> bytes:
    """Encode a value as the client sends it: compact JSON, UTF-8, non-ASCII kept as is.

    Args:
        value: any JSON value.

    Returns:
        The bytes on the wire.
    """
    return json_codec.dumps_bytes(value)


def record_size_bytes(payload: Mapping[str, Any]) -> int:
    """Measure a record as the API sees it inside ``data[]``.

    Args:
        payload: the record as sent, ``custom_fields`` included.

    Returns:
        Its length in bytes, as encoded by ``to_json_bytes``.
    """
    return len(to_json_bytes(payload))


def _largest_field(payload: Mapping[str, Any]) -> str:
    return max(payload, key=lambda name: len(to_json_bytes(payload[name])))


def prepare_record(raw: Mapping[str, Any], *, index: int, correlation_id: str) -> PreparedRecord | Rejection:
    """Turn one input row into the record sent to the API, or say why it cannot be sent.

    Args:
        raw: the user's row.
        index: its position in the job's input.
        correlation_id: our id for it, stored in ``custom_fields[CORRELATION_FIELD]``.

    Returns:
        A ``PreparedRecord``, or the first ``Rejection`` found (all of them come
        from ``validate_record``).

    Raises:
        ValueError: ``correlation_id`` is empty or not a string (a bug in the caller).
    """
    if not isinstance(correlation_id, str) or not correlation_id:
        raise ValueError(f"correlation_id must be a non-empty string, got {correlation_id!r}")
    if not isinstance(raw, Mapping):
        message = f"record {index}: must be an object of fields, got {type(raw).__name__}"
        return Rejection(index, None, RejectionRule.NOT_AN_OBJECT, message)
    record = normalize_record(raw)
    unknown = find_unknown_keys(raw)
    problems = validate_record(record, index=index)
    if problems:
        first = problems[0]
        if first.rule is RejectionRule.MISSING_IDENTIFIER and unknown:
            names = ", ".join(shown(key) for key in unknown[:_SHOWN_UNKNOWN])
            more = f" and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
            hint = f"{first.message} (unrecognised fields: {names}{more})"
            return Rejection(index, first.field, first.rule, hint)
        return first
    custom_fields = dict(record.get("custom_fields", {}))
    custom_fields[CORRELATION_FIELD] = correlation_id
    payload = {**record, "custom_fields": custom_fields}
    size = record_size_bytes(payload)
    if size > MAX_RECORD_BYTES:
        largest = _largest_field(payload)
        message = (
            f"record {index}: is {size} bytes as JSON (custom_fields and correlation id included), "
            f"over the {MAX_RECORD_BYTES}-byte limit; the largest field is {largest}"
        )
        return Rejection(index, largest, RejectionRule.TOO_LARGE, message)
    return PreparedRecord(index, payload, identity_key(payload), size, unknown)


def prepare_records(
    rows: Iterable[Mapping[str, Any]],
    *,
    correlation_id: Callable[[int], str],
    start_index: int = 0,
) -> Iterator[PreparedRecord | Rejection]:
    """Prepare rows one by one, as a stream (constant memory, input order).

    Args:
        rows: the input rows.
        correlation_id: gives the correlation id for an input index.
        start_index: the index of the first row (for inputs that arrive in several parts).

    Returns:
        An iterator of one ``PreparedRecord`` or ``Rejection`` per row.
    """
    for index, raw in enumerate(rows, start=start_index):
        yield prepare_record(raw, index=index, correlation_id=correlation_id(index))
