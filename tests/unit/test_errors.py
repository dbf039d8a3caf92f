"""The error tree: shape, retryability, serialization, and the one mapping from responses onto it."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from celery import Celery
from celery.backends.base import Backend

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
from dropq.dropcontact.responses import Route, error_from_response

SECRET = "sk_live_do_not_print_me"

EXAMPLES: list[DropcontactError] = [
    DropcontactError("base", 418, "teapot", "req1"),
    TransientError("transient", 500),
    RateLimitedError("slow down", 429, "Too many requests", "req2", 2.5),
    ServerError("boom", 524, "A timeout occured", "req3"),
    NetworkError("read timed out", None, None, "req4", True),
    PermanentError("permanent"),
    AuthenticationError("no", 401, "Missing or invalid API key"),
    InvalidRequestError("bad", 422, "body.data.3.email: invalid", None, 3),
    UnexpectedResponseError("what", 200, "<html>"),
    AccountError("who", 403, "Unknown account"),
    NotFoundError("none", 404, "No default webhook URL to delete"),
    InsufficientCreditsError("broke", 403, "Not enough credits", None, 12),
]


def _fields(exc: DropcontactError) -> dict[str, Any]:
    return {key: value for key, value in vars(exc).items() if not key.startswith("_")}


@pytest.mark.parametrize(
    ("cls", "parent", "is_retryable"),
    [
        (TransientError, DropcontactError, True),
        (RateLimitedError, TransientError, True),
        (ServerError, TransientError, True),
        (NetworkError, TransientError, True),
        (PermanentError, DropcontactError, False),
        (AuthenticationError, PermanentError, False),
        (InvalidRequestError, PermanentError, False),
        (UnexpectedResponseError, PermanentError, False),
        (AccountError, PermanentError, False),
        (NotFoundError, PermanentError, False),
        (InsufficientCreditsError, DropcontactError, False),
    ],
)
def test_each_class_sits_where_the_tree_says(cls: type[DropcontactError], parent: type, is_retryable: bool) -> None:
    """Each class has the documented parent and retryability."""
    assert issubclass(cls, parent)
    assert cls.is_retryable is is_retryable


def test_insufficient_credits_is_neither_transient_nor_permanent() -> None:
    """Not enough credits is its own branch: pause, don't retry, don't treat as a bug."""
    assert not issubclass(InsufficientCreditsError, TransientError | PermanentError)


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda exc: type(exc).__name__)
def test_every_class_survives_pickle(exc: DropcontactError) -> None:
    """Pickling keeps the class, the message and every structured field."""
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert _fields(copy) == _fields(exc)


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda exc: type(exc).__name__)
def test_every_class_survives_celerys_json_rebuild(exc: DropcontactError) -> None:
    """Celery's JSON backend stores ``args`` as JSON and rebuilds with ``type(exc)(*args)``."""
    stored = json.loads(json.dumps(list(exc.args)))
    copy = type(exc)(*stored)
    assert str(copy) == str(exc)
    assert _fields(copy) == _fields(exc)


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda exc: type(exc).__name__)
def test_every_class_survives_a_real_celery_json_backend(exc: DropcontactError) -> None:
    """Celery's own ``prepare_exception``/``exception_to_python`` with the JSON serializer restore the error."""
    backend = Backend(app=Celery(set_as_current=False), serializer="json")
    stored = json.loads(json.dumps(backend.prepare_exception(exc)))
    copy = backend.exception_to_python(stored)
    assert type(copy) is type(exc)
    assert _fields(copy) == _fields(exc)


def test_str_is_the_message_alone() -> None:
    """``str`` shows the sentence, not the tuple of args."""
    assert str(RateLimitedError("rate limited", 429, None, None, 1.0)) == "rate limited"


def test_structured_fields_have_documented_defaults() -> None:
    """Each class defaults its status to the one it stands for."""
    assert RateLimitedError("x").status == 429
    assert RateLimitedError("x").retry_after_s is None
    assert InvalidRequestError("x").status == 400
    assert InvalidRequestError("x").record_index is None
    assert InsufficientCreditsError("x").status == 403
    assert NetworkError("x").is_timeout is False


# -- the mapping from responses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "route", "expected", "reason"),
    [
        (401, {"error": True, "reason": "Missing or invalid API key", "success": False}, Route.SUBMIT,
         AuthenticationError, "Missing or invalid API key"),
        (401, {"detail": "Missing or invalid API key"}, Route.CREDITS, AuthenticationError,
         "Missing or invalid API key"),
        (403, {"error": True, "reason": "Not enough credits", "success": False}, Route.SUBMIT,
         InsufficientCreditsError, "Not enough credits"),
        (403, {"error": True, "reason": "Unknown account", "success": False}, Route.WEBHOOK, AccountError,
         "Unknown account"),
        (403, {"error": True, "reason": "Unknown account", "success": False}, Route.SUBMIT, AccountError,
         "Unknown account"),
        (403, {"detail": "API call Token exceeded quota"}, Route.CREDITS, InsufficientCreditsError,
         "API call Token exceeded quota"),
        (404, {"error": True, "reason": "No default webhook URL to delete", "success": False},
         Route.WEBHOOK_DELETE, NotFoundError, "No default webhook URL to delete"),
        (404, {"detail": "No default webhook URL to delete"}, Route.WEBHOOK_DELETE, NotFoundError,
         "No default webhook URL to delete"),
        (404, {"detail": "Not Found"}, Route.SUBMIT, UnexpectedResponseError, "Not Found"),
        (400, {"error": True, "reason": "Missing data in JSON", "success": False}, Route.SUBMIT,
         InvalidRequestError, "Missing data in JSON"),
        (400, {"error": True, "reason": "Too many records, you can only submit up to 250 records",
               "success": False}, Route.SUBMIT, InvalidRequestError,
         "Too many records, you can only submit up to 250 records"),
        (400, {"error": True, "reason": "Data size is too big, you can only submit up to 15 kB of data in a "
               "single record", "success": False}, Route.SUBMIT, InvalidRequestError,
         "Data size is too big, you can only submit up to 15 kB of data in a single record"),
        (422, {"detail": [{"loc": ["body", "callback_url"], "msg": "field required", "type": "missing"}]},
         Route.WEBHOOK, InvalidRequestError, "body.callback_url: field required"),
        (429, {"error": True, "reason": "Too many requests", "success": False}, Route.FETCH, RateLimitedError,
         "Too many requests"),
        (500, {"detail": "Error on Dropcontact's side"}, Route.FETCH, ServerError, "Error on Dropcontact's side"),
        (502, "<html>Bad gateway</html>", Route.SUBMIT, ServerError, "<html>Bad gateway</html>"),
        (503, None, Route.SUBMIT, ServerError, None),
        (504, None, Route.FETCH, ServerError, None),
        (524, "error code: 524", Route.SUBMIT, ServerError, "error code: 524"),
        (599, None, Route.SUBMIT, ServerError, None),
        (302, None, Route.SUBMIT, UnexpectedResponseError, None),
        (405, {"detail": "Method Not Allowed"}, Route.SUBMIT, UnexpectedResponseError, "Method Not Allowed"),
    ],
)  # fmt: skip
def test_each_documented_status_maps_to_its_error(
    status: int, body: Any, route: Route, expected: type[DropcontactError], reason: str | None
) -> None:
    """Statuses and envelopes (``reason`` or ``detail``) become the documented class with the API's text."""
    error = error_from_response(status, body, {}, route=route)
    assert type(error) is expected
    assert error.status == status
    assert error.reason == reason


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Wed, 26 Nov 2025 10:00:07 GMT", "Date": "Wed, 26 Nov 2025 10:00:00 GMT"}, 7.0),
        ({"Retry-After": "Wed, 26 Nov 2025 10:00:07 GMT"}, None),
    ],
)
def test_rate_limited_carries_the_servers_suggested_wait(headers: dict[str, str], wait: float | None) -> None:
    """``Retry-After`` in seconds, or as a date measured against the response's ``Date``, is ``retry_after_s``."""
    error = error_from_response(429, {"reason": "Too many requests"}, headers, route=Route.SUBMIT)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == wait


def test_422_names_the_offending_record_index() -> None:
    """FastAPI's ``loc`` path into ``data`` gives the record's index."""
    body = {"detail": [{"loc": ["body", "data", 7, "email"], "msg": "str type expected", "type": "type_error"}]}
    error = error_from_response(422, body, {}, route=Route.SUBMIT)
    assert isinstance(error, InvalidRequestError)
    assert error.record_index == 7
    assert error.reason == "body.data.7.email: str type expected"


def test_403_on_submit_carries_the_balance_when_given() -> None:
    """A 403 that reports ``credits_left`` keeps it on the error."""
    error = error_from_response(403, {"reason": "Not enough credits", "credits_left": 3}, {}, route=Route.SUBMIT)
    assert isinstance(error, InsufficientCreditsError)
    assert error.credits_left == 3


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": True, "success": False, "reason": "Missing data in JSON"}, InvalidRequestError),
        ({"error": True, "success": False, "reason": "Not enough credits"}, InsufficientCreditsError),
        ({"error": True, "success": False, "reason": "Too many requests"}, RateLimitedError),
        ({"error": True, "success": False, "reason": "Missing or invalid API key"}, AuthenticationError),
    ],
)
def test_an_error_envelope_inside_a_200_is_an_error(body: dict[str, Any], expected: type[DropcontactError]) -> None:
    """``"error": true`` in a 200 is never taken for success."""
    assert type(error_from_response(200, body, {}, route=Route.SUBMIT)) is expected


@pytest.mark.parametrize(
    "body",
    [
        {"error": False, "reason": "Request not ready yet, try again in 30 seconds", "success": False},
        {"credits_left": 5, "request_id": "abc", "error": False, "success": True},
        {"credits": 12},
    ],
)
def test_a_2xx_without_an_error_flag_is_left_to_the_endpoint(body: dict[str, Any]) -> None:
    """Not-ready and successful answers are not errors; each endpoint reads its own success fields."""
    assert error_from_response(200, body, {}, route=Route.FETCH) is None


def test_the_api_key_is_scrubbed_from_server_texts() -> None:
    """A server that echoes the key back does not get it into our message, reason or repr."""
    body = {"reason": f"Invalid key {SECRET}", "error": True, "success": False}
    error = error_from_response(401, body, {}, route=Route.SUBMIT, secret=SECRET)
    assert error is not None
    for text in (str(error), repr(error), error.reason or "", json.dumps(error.args)):
        assert SECRET not in text
    assert error.reason == "Invalid key [api key]"


def test_long_server_texts_are_cut() -> None:
    """An HTML error page does not become a megabyte exception message."""
    error = error_from_response(502, "x" * 10_000, {}, route=Route.SUBMIT)
    assert error is not None
    assert len(str(error)) < 500
