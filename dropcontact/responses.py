"""What the API's answers mean: our error for a failed one, typed values for the rest.

``error_from_response`` is the only place where statuses and the API's
envelopes are read: ``reason`` in the standard envelope, ``detail`` on 404,
422, 500 and every answer of the credits endpoint, and FastAPI's 422 list.
The same status means different things on different routes (a 403 is "not
enough credits" on submit, "Unknown account" on the webhook endpoints), so the
caller says which ``Route`` it called. No I/O and no clock: the HTTP client
feeds it, and tests call it with plain values.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

from dropq.dropcontact.errors import (
    AccountError,
    AuthenticationError,
    DropcontactError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)

__all__ = [
    "Route",
    "error_from_response",
    "FetchState",
    "SubmitResult",
    "FetchResult",
    "Subscription",
    "subscription_from",
    "subscription_id_of",
    "reason_of",
    "scrub",
    "int_or_none",
]

# A server's text is cut to this length in our messages: enough to read, not a whole HTML page.
_MAX_REASON_CHARS = 300


class Route(StrEnum):
    """The endpoint a response came from; the same status means different things on different routes."""

    SUBMIT = "submit"
    FETCH = "fetch"
    CREDITS = "credits"
    WEBHOOK = "webhook"
    WEBHOOK_DELETE = "webhook_delete"
    SUBSCRIPTIONS = "subscriptions"
    SUBSCRIPTION = "subscription"  # one subscription, by id


def scrub(text: str, secret: str) -> str:
    """Cut a server's text to a readable length and replace the API key in it, should the server echo it.

    Args:
        text: what the server sent.
        secret: the API key ("" to skip).

    Returns:
        The text, safe for a message.
    """
    cut = text[:_MAX_REASON_CHARS] + ("…" if len(text) > _MAX_REASON_CHARS else "")
    return cut.replace(secret, "[api key]") if secret else cut


def reason_of(body: Any) -> str | None:
    """Read the API's message: ``reason`` in its envelope, ``detail`` on 404/422/500 and the credits endpoint.

    Args:
        body: the decoded JSON body, or the body's text.

    Returns:
        The message (a 422's list flattened to ``loc: msg`` items), or None.
    """
    if isinstance(body, str):
        return body.strip() or None
    if not isinstance(body, Mapping):
        return None
    for key in ("reason", "detail", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if key == "detail" and isinstance(value, list) and value:
            return "; ".join(_describe_validation_item(item) for item in value)
    return None


def _describe_validation_item(item: Any) -> str:
    if not isinstance(item, Mapping):
        return str(item)
    location = ".".join(str(part) for part in item.get("loc", ()) if isinstance(part, str | int))
    message = str(item.get("msg", "invalid"))
    return f"{location}: {message}" if location else message


def _record_index_of(body: Any) -> int | None:
    """The record a 400/422 is about: FastAPI's ``loc`` (``["body", "data", 3, ...]``) or a ``record_index``."""
    if not isinstance(body, Mapping):
        return None
    explicit = body.get("record_index", body.get("index"))
    if isinstance(explicit, int) and not isinstance(explicit, bool):
        return explicit
    detail = body.get("detail")
    for item in detail if isinstance(detail, list) else ():
        location = item.get("loc", ()) if isinstance(item, Mapping) else ()
        for before, after in itertools.pairwise(location):
            if before == "data" and isinstance(after, int) and not isinstance(after, bool):
                return after
    return None


def int_or_none(value: Any) -> int | None:
    """Return an integer field's value, or None for anything else (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date measured against the response's ``Date``."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    served = headers.get("Date")
    if not served:
        return None  # an HTTP date needs the server's Date to measure against; we read no clock here
    try:
        return max(0.0, (parsedate_to_datetime(raw) - parsedate_to_datetime(served)).total_seconds())
    except (TypeError, ValueError):
        return None


def _looks_like_credits(reason: str | None) -> bool:
    text = (reason or "").casefold()
    return any(word in text for word in ("credit", "quota", "balance"))


def error_from_response(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    route: Route,
    secret: str = "",
    request_id: str | None = None,
) -> DropcontactError | None:
    """Map one HTTP answer onto our error tree; the only place where statuses and envelopes are read.

    Args:
        status: the HTTP status.
        body: the decoded JSON body, or its text when it was not JSON.
        headers: the response headers (``Retry-After``, ``Date``).
        route: the endpoint called.
        secret: the API key, scrubbed from any text the server sent back.
        request_id: the batch concerned, if any, carried on the error.

    Returns:
        The error to raise, or None for a 2xx whose envelope is not an
        explicit failure (``"error": true``). ``success: false`` with
        ``error: false`` is not an error here: on the results route it means
        "not ready", and every other route checks its own success fields.
    """
    raw_reason = reason_of(body)
    reason = scrub(raw_reason, secret) if raw_reason else None
    said = f": {reason}" if reason else ""
    where = f"{route.value}: HTTP {status}"
    if 200 <= status < 300:
        if isinstance(body, Mapping) and body.get("error") is True:
            return _error_from_failed_envelope(status, reason, route, request_id, body)
        return None
    if status == 401:
        return AuthenticationError(f"{where}, the API key was refused{said}", status, reason, request_id)
    if status == 403:
        unknown_account = "unknown account" in (reason or "").casefold()
        if (route is Route.SUBMIT or _looks_like_credits(reason)) and not unknown_account:
            credits = int_or_none(body.get("credits_left")) if isinstance(body, Mapping) else None
            message = f"{where}, not enough credits for the whole batch{said}"
            return InsufficientCreditsError(message, status, reason, request_id, credits)
        return AccountError(f"{where}, the account was refused{said}", status, reason, request_id)
    if status == 404:
        if route in (Route.WEBHOOK_DELETE, Route.SUBSCRIPTION):
            return NotFoundError(f"{where}, nothing to act on{said}", status, reason, request_id)
        return UnexpectedResponseError(f"{where} on a documented route (wrong base URL?){said}", status, reason)
    if status in (400, 413, 422):
        index = _record_index_of(body)
        message = f"{where}, the request was refused as invalid{said}"
        return InvalidRequestError(message, status, reason, request_id, index)
    if status == 429:
        wait = _retry_after_s(headers)
        message = f"{where}, rate limited" + (f" (retry after {wait:g} s)" if wait is not None else "") + said
        return RateLimitedError(message, status, reason, request_id, wait)
    if 500 <= status < 600:
        return ServerError(f"{where}, a server error on Dropcontact's side{said}", status, reason, request_id)
    return UnexpectedResponseError(f"{where}, an undocumented status{said}", status, reason, request_id)


def _error_from_failed_envelope(
    status: int, reason: str | None, route: Route, request_id: str | None, body: Mapping[str, Any]
) -> DropcontactError:
    """A 2xx saying ``"error": true``: classify by its text, since the status says nothing."""
    text = (reason or "").casefold()
    where = f"{route.value}: HTTP {status} with error: true"
    said = f": {reason}" if reason else ""
    if _looks_like_credits(reason) and "unknown account" not in text:
        credits = int_or_none(body.get("credits_left"))
        return InsufficientCreditsError(f"{where}, not enough credits{said}", status, reason, request_id, credits)
    if "too many request" in text:
        return RateLimitedError(f"{where}, rate limited{said}", status, reason, request_id, None)
    if "api key" in text or "token" in text:
        return AuthenticationError(f"{where}, the API key was refused{said}", status, reason, request_id)
    if route is Route.SUBMIT:
        return InvalidRequestError(f"{where}, the request was refused{said}", status, reason, request_id, None)
    return UnexpectedResponseError(f"{where}{said}", status, reason, request_id)


class FetchState(StrEnum):
    """Where a batch stands."""

    NOT_READY = "not_ready"  # still processing (or unknown id, or a brief outage: the API can't tell)
    IN_PROGRESS = "in_progress"  # forceResults: partial results, the rest still processing
    READY = "ready"  # every record processed


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The API accepted a batch."""

    request_id: str
    credits_left: int | None
    hashed_inputs: Any = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A batch's results, or that they are not ready yet."""

    state: FetchState
    records: list[dict[str, Any]]
    credits_left: int | None = None
    reason: str | None = None

    @property
    def is_ready(self) -> bool:
        """Tell whether every record has been processed."""
        return self.state is FetchState.READY


@dataclass(frozen=True, slots=True)
class Subscription:
    """A legacy webhook subscription (``/v1/webhooks/subscriptions``)."""

    id: str
    event_type: str | None
    callback_url: str | None
    active: bool | None
    period_s: int | None
    max_webhooks_per_period: int | None


def subscription_id_of(item: Any) -> str | None:
    """Read a subscription's id (``id``, else ``subscription_id`` or ``_id``), as text."""
    if not isinstance(item, Mapping):
        return None
    for key in ("id", "subscription_id", "_id"):
        value = item.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def subscription_from(item: Mapping[str, Any]) -> Subscription:
    """Read one listed subscription, leaving absent or ill-typed fields as None."""

    def text(key: str) -> str | None:
        value = item.get(key)
        return value if isinstance(value, str) else None

    active = item.get("active")
    return Subscription(
        id=subscription_id_of(item) or "",
        event_type=text("event_type"),
        callback_url=text("callback_url"),
        active=active if isinstance(active, bool) else None,
        period_s=int_or_none(item.get("period_s")),
        max_webhooks_per_period=int_or_none(item.get("max_webhooks_per_period")),
    )
