"""The exact messages and response bodies of the API, serialised once.

Copied from the docs (``shared/dropcontact-api.md``) where they show them:

- not ready, unknown or expired id: ``Request not ready yet, try again in 30 seconds`` (``error: false``);
- the three 400s: ``Missing data in JSON``, ``Too many records, you can only submit up to 250 records``,
  ``Data size is too big, you can only submit up to 15 kB of data in a single record``;
- ``No default webhook URL to delete`` (404 with the ``reason`` envelope, as its reference page shows);
- ``{"detail": "Not Found"}`` for unknown routes.

Where the docs name the case but not the text, our wording, built from the docs' descriptions:

- 401: ``Missing or invalid API key`` (the response description of every reference page);
- 403 on submit: ``Not enough credits to process all the records of this request``;
- 429: ``Too many requests, try again in a few seconds`` (the rate-limit page and the 429 description);
- 500: ``{"detail": "Internal Server Error"}``; 503, 504 and 524 come from the CDN in front of the API,
  so they are small HTML pages titled with the old docs' wording, not JSON;
- DELETE of the default webhook: ``{"detail": "Default webhook URL deleted"}``;
- subscriptions (old docs, shapes not shown): create answers ``{"error": false, "id": ..., "success": true}``,
  list ``{"data": [...], ...}``, edit ``{"data": {...}, ...}``, delete ``{"detail": "Subscription deleted"}``,
  an unknown id 404 ``{"detail": "Subscription not found"}``.

``/v1/account/credits`` carries every error in ``detail`` instead of ``reason``, as documented.
"""

from __future__ import annotations

import json

__all__ = [
    "NOT_READY",
    "MISSING_DATA",
    "TOO_MANY_RECORDS",
    "RECORD_TOO_BIG",
    "INVALID_KEY",
    "NOT_ENOUGH_CREDITS",
    "RATE_LIMITED",
    "NO_DEFAULT_WEBHOOK",
    "DEFAULT_WEBHOOK_DELETED",
    "SUBSCRIPTION_NOT_FOUND",
    "SUBSCRIPTION_DELETED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "INTERNAL_ERROR",
    "dump",
    "reason_body",
    "detail_body",
    "validation_body",
    "cdn_error_page",
    "NOT_READY_BODY",
]

NOT_READY = "Request not ready yet, try again in 30 seconds"
MISSING_DATA = "Missing data in JSON"
TOO_MANY_RECORDS = "Too many records, you can only submit up to 250 records"
RECORD_TOO_BIG = "Data size is too big, you can only submit up to 15 kB of data in a single record"
INVALID_KEY = "Missing or invalid API key"
NOT_ENOUGH_CREDITS = "Not enough credits to process all the records of this request"
RATE_LIMITED = "Too many requests, try again in a few seconds"
NO_DEFAULT_WEBHOOK = "No default webhook URL to delete"
DEFAULT_WEBHOOK_DELETED = "Default webhook URL deleted"
SUBSCRIPTION_NOT_FOUND = "Subscription not found"
SUBSCRIPTION_DELETED = "Subscription deleted"
NOT_FOUND = "Not Found"
METHOD_NOT_ALLOWED = "Method Not Allowed"
INTERNAL_ERROR = "Internal Server Error"

# Titles of the CDN pages for the transient statuses, in the old docs' words.
_CDN_TITLES = {503: "Service Unavailable", 504: "Gateway Timeout", 524: "A timeout occurred"}


def dump(value: object) -> bytes:
    """Compact UTF-8 JSON, as the API (FastAPI) writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def reason_body(reason: str, *, error: bool = True) -> bytes:
    """The standard envelope ``{"error": ..., "reason": ..., "success": false}``."""
    return dump({"error": error, "reason": reason, "success": False})


def detail_body(detail: object) -> bytes:
    """The FastAPI envelope ``{"detail": ...}``."""
    return dump({"detail": detail})


def validation_body(loc: list[str | int], msg: str, kind: str) -> bytes:
    """A 422 body in FastAPI's shape: ``{"detail": [{"loc", "msg", "type"}]}``."""
    return detail_body([{"loc": loc, "msg": msg, "type": kind}])


def cdn_error_page(status: int) -> bytes:
    """The small HTML page a CDN answers with for 503, 504 and 524."""
    title = f"{status} {_CDN_TITLES.get(status, 'Error')}"
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()


NOT_READY_BODY = reason_body(NOT_READY, error=False)
