"""Reading and checking a ``POST /v1/enrich/all`` body, before any shared state is touched.

Pure. The checks run in the documented order of importance and stop at the
first failure: the body must hold a non-empty ``data`` list (else ``Missing
data in JSON``), at most 250 records (else ``Too many records...``), each
record at most 15 kB (else ``Data size is too big...``). Credits are checked
later, by the state, so a request refused here never costs anything.

Choices where the docs are silent: a body that is not JSON gets FastAPI's 422;
an empty body or one without a usable ``data`` list gets ``Missing data in JSON``;
a record that is not an object gets a 422 naming its index; unknown keys are
accepted and ignored. ``siren`` and ``language`` are read from the body, or from
the query string as the old docs showed them; the body wins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dropq.dropcontact.sandbox import envelopes
from dropq.dropcontact.sandbox.enrichment import canonical_json

__all__ = ["Submission", "Refusal", "read_submission", "MAX_RECORDS_PER_REQUEST", "MAX_RECORD_BYTES"]

# The API takes at most 250 records per request.
MAX_RECORDS_PER_REQUEST = 250
# "15 kB per record, custom_fields included": counted as 15 * 1024 bytes of the record's
# compact UTF-8 JSON (sorted keys, no spaces), the same measure the client's batching uses.
MAX_RECORD_BYTES = 15 * 1024


@dataclass(frozen=True, slots=True)
class Submission:
    """A checked batch: the records, their canonical JSON, and the request's options."""

    records: list[dict[str, Any]]
    keys: list[bytes]
    language: str
    siren: bool
    callback_url: str | None

    @property
    def is_credit_check(self) -> bool:
        """Tell whether this is the old docs' free balance check, ``{"data": [{}]}``."""
        return len(self.records) == 1 and not self.records[0]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A body refused before it reaches the state: the status and the serialised answer."""

    status: int
    body: bytes


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


def read_submission(raw: bytes | bytearray, query: Mapping[str, str]) -> Submission | Refusal:
    """Parse and check a submit body.

    Args:
        raw: the request body.
        query: the query parameters (old docs' ``siren`` and ``language``).

    Returns:
        The checked submission, or the refusal to answer with.
    """
    if not raw.strip():
        return Refusal(400, envelopes.reason_body(envelopes.MISSING_DATA))
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return Refusal(422, envelopes.validation_body(["body", 0], "JSON decode error", "json_invalid"))
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        return Refusal(400, envelopes.reason_body(envelopes.MISSING_DATA))
    if len(data) > MAX_RECORDS_PER_REQUEST:
        return Refusal(400, envelopes.reason_body(envelopes.TOO_MANY_RECORDS))
    keys: list[bytes] = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            body_422 = envelopes.validation_body(
                ["body", "data", index], "Input should be a valid dictionary", "dict_type"
            )
            return Refusal(422, body_422)
        key = canonical_json(record)
        if len(key) > MAX_RECORD_BYTES:
            return Refusal(400, envelopes.reason_body(envelopes.RECORD_TOO_BIG))
        keys.append(key)
    language = body.get("language", query.get("language"))
    callback_url = body.get("custom_callback_url")
    return Submission(
        records=data,
        keys=keys,
        language="en" if isinstance(language, str) and language.strip().lower() == "en" else "fr",
        siren=_flag(body.get("siren", query.get("siren"))),
        callback_url=callback_url if isinstance(callback_url, str) and callback_url else None,
    )
