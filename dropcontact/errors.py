"""Every failure the Dropcontact API package raises, in one tree split by what the caller should do.

::

    DropcontactError                  base: status, reason, request_id; never the API key
    ├── TransientError                retry later (is_retryable = True)
    │   ├── RateLimitedError          429; retry_after_s when the server suggests a wait
    │   ├── ServerError               500, 502, 503, 504, 524 and any other 5xx
    │   └── NetworkError              refused, reset, DNS, connect or read timeout; is_timeout
    ├── PermanentError                fix something first (is_retryable = False)
    │   ├── AuthenticationError       401: wrong or missing token
    │   ├── InvalidRequestError       400 and 422: the API's reason, record_index when known
    │   ├── UnexpectedResponseError   a body we cannot understand, a redirect, 404 on a known route
    │   ├── AccountError              403 "Unknown account" (webhook endpoints)
    │   └── NotFoundError             404 "No default webhook URL to delete", unknown subscription
    └── InsufficientCreditsError      403 on submit: pause the key, don't retry; credits_left

Not-enough-credits is its own branch: it is neither worth retrying now nor a bug
to fix, and the whole request was refused (no credit spent).

Every class rebuilds from ``type(exc)(*exc.args)``, which is how Celery's JSON
result serializer restores an exception, and pickles through ``__reduce__``.
So ``args`` holds the message and every structured field, in ``__init__``
order, and all of them are JSON values. ``str(exc)`` is the message alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dropq.errors import DropqError

__all__ = [
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


class DropcontactError(DropqError):
    """Base of every error raised by the ``dropcontact`` package.

    Args:
        message: a sentence for humans; it never contains the API key.
        status: the HTTP status, when a response arrived.
        reason: the API's own ``reason`` or ``detail`` text, when it sent one.
        request_id: the batch's ``request_id``, when the call concerned one.
    """

    is_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        status: int | None = None,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status, reason, request_id)
        self.message = message
        self.status = status
        self.reason = reason
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self.args)


class TransientError(DropcontactError):
    """The call may succeed later unchanged: retry with a backoff."""

    is_retryable: ClassVar[bool] = True


class RateLimitedError(TransientError):
    """429: too many requests for this key (or, on webhook endpoints, a brief problem on their side).

    Args:
        retry_after_s: the wait the server suggested in ``Retry-After``, if it sent one.
    """

    def __init__(
        self,
        message: str,
        status: int | None = 429,
        reason: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status, reason, request_id)
        self.args = (message, status, reason, request_id, retry_after_s)
        self.retry_after_s = retry_after_s


class ServerError(TransientError):
    """A 5xx or Cloudflare's 524: Dropcontact failed or timed out on its side."""


class NetworkError(TransientError):
    """No usable response: connection refused or reset, DNS failure, connect or read timeout.

    A POST that ends here after the connection was made (a read timeout, a
    reset) may have reached the API; the caller treats it as in doubt before
    sending it again (credits are money). One that never connected did not.

    Args:
        is_timeout: True when a connect or read timeout expired.
        may_have_arrived: False only when no connection was ever made (refused, connect timeout, DNS).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        reason: str | None = None,
        request_id: str | None = None,
        is_timeout: bool = False,
        may_have_arrived: bool = True,
    ) -> None:
        super().__init__(message, status, reason, request_id)
        self.args = (message, status, reason, request_id, is_timeout, may_have_arrived)
        self.is_timeout = is_timeout
        self.may_have_arrived = may_have_arrived


class PermanentError(DropcontactError):
    """Sending the same call again will fail the same way: fix the input or the configuration."""


class AuthenticationError(PermanentError):
    """401: the ``X-Access-Token`` is missing or wrong."""


class InvalidRequestError(PermanentError):
    """400 or 422: the API refused the request as invalid.

    Args:
        record_index: the position in ``data`` of the offending record, when the API named one.
    """

    def __init__(
        self,
        message: str,
        status: int | None = 400,
        reason: str | None = None,
        request_id: str | None = None,
        record_index: int | None = None,
    ) -> None:
        super().__init__(message, status, reason, request_id)
        self.args = (message, status, reason, request_id, record_index)
        self.record_index = record_index


class UnexpectedResponseError(PermanentError):
    """The server answered something outside the documented envelopes (or 404 on a known route)."""


class AccountError(PermanentError):
    """403 "Unknown account": the key authenticates but has no account behind it."""


class NotFoundError(PermanentError):
    """404 on a resource that may legitimately be absent (no default webhook, unknown subscription)."""


class InsufficientCreditsError(DropcontactError):
    """403 on submit: the balance cannot cover every record, so the whole request was refused.

    Pause submissions for this key until credits come back; retrying now only fails again.

    Args:
        credits_left: the balance, when the API reported it.
    """

    def __init__(
        self,
        message: str,
        status: int | None = 403,
        reason: str | None = None,
        request_id: str | None = None,
        credits_left: int | None = None,
    ) -> None:
        super().__init__(message, status, reason, request_id)
        self.args = (message, status, reason, request_id, credits_left)
        self.credits_left = credits_left
