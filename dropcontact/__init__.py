"""The Dropcontact API, with no Celery: HTTP client, record model and batch rules, error types.

Pure modules (no I/O, no clock): ``records`` (normalise, validate, measure),
``identities`` (who a record is about), ``json_codec`` (the compact JSON of records and results),
``batching`` (pack batches as a stream), ``joining`` (results back to their
rows), ``qualification`` (email qualifications as values), ``responses``
(what the API's answers mean). The adapter: ``client`` (HTTP). The
failures: ``errors``. ``dropcontact.sandbox`` is a local emulator of the API.
"""

from __future__ import annotations

from dropq.dropcontact.batching import Segment, batch_payload, split_into_segments
from dropq.dropcontact.client import DropcontactClient, FetchResult, FetchState, SubmitResult, Subscription
from dropq.dropcontact.errors import (
    AccountError,
    AuthenticationError,
    DropcontactError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    ServerError,
    TransientError,
    UnexpectedResponseError,
)
from dropq.dropcontact.identities import identity_key
from dropq.dropcontact.joining import JoinedRecord, JoinStatus, correlation_id_of, join_results
from dropq.dropcontact.qualification import (
    EmailDomain,
    EmailKind,
    EmailResult,
    Qualification,
    best_email,
    parse_emails,
    parse_qualification,
)
from dropq.dropcontact.records import (
    CORRELATION_FIELD,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    PreparedRecord,
    Rejection,
    RejectionRule,
    normalize_record,
    prepare_record,
    prepare_records,
    validate_record,
)

__all__: list[str] = [
    # the client
    "DropcontactClient",
    "SubmitResult",
    "FetchResult",
    "FetchState",
    "Subscription",
    # records and batches
    "prepare_record",
    "prepare_records",
    "PreparedRecord",
    "Rejection",
    "RejectionRule",
    "normalize_record",
    "validate_record",
    "identity_key",
    "split_into_segments",
    "Segment",
    "batch_payload",
    "CORRELATION_FIELD",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    # results
    "join_results",
    "JoinedRecord",
    "JoinStatus",
    "correlation_id_of",
    "parse_qualification",
    "parse_emails",
    "best_email",
    "Qualification",
    "EmailKind",
    "EmailDomain",
    "EmailResult",
    # errors
    "DropcontactError",
    "TransientError",
    "RateLimitedError",
    "ServerError",
    "NetworkError",
    "PermanentError",
    "AuthenticationError",
    "InvalidRequestError",
    "UnexpectedResponseError",
    "AccountError",
    "NotFoundError",
    "InsufficientCreditsError",
]
