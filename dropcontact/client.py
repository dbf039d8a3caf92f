"""The HTTP client of the Dropcontact API: one method per endpoint, typed answers, only our errors.

One ``requests.Session`` per client (create it per worker process, after the
fork) holds the connection pool, the ``X-Access-Token`` and a ``User-Agent``
naming dropq. Every call has explicit connect and read timeouts.

Every response goes through ``responses.error_from_response`` (pure) and
every ``requests`` exception through ``_network_error``: those two functions
are the whole mapping onto ``dropcontact.errors``. POSTs are never re-sent
here (a lost answer to a submit may have cost credits: the caller
reconciles); only GETs get one quiet re-attempt from the adapter when a
pooled connection turns out to be dead. 429 and 5xx surface as errors for
the caller's backoff.

The key never appears in a message or ``repr``: the server's texts are
scrubbed of it, redirects are not followed (``requests`` would carry a custom
header to any host), and a key that could not be sent as a header is refused
without being quoted.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from dropq.dropcontact import json_codec
from dropq.dropcontact.errors import DropcontactError, NetworkError, UnexpectedResponseError
from dropq.dropcontact.records import MAX_BATCH_RECORDS, to_json_bytes
from dropq.dropcontact.responses import (
    FetchResult,
    FetchState,
    Route,
    SubmitResult,
    Subscription,
    error_from_response,
    int_or_none,
    reason_of,
    scrub,
)
from dropq.dropcontact.webhook_settings import WebhookSettings

__all__ = [
    "DEFAULT_BASE_URL",
    "DropcontactClient",
    "SubmitResult",
    "FetchResult",
    "FetchState",
    "Subscription",
]

DEFAULT_BASE_URL = "https://api.dropcontact.com"
# requests has no default timeout; a call without one can hold a worker forever.
DEFAULT_CONNECT_TIMEOUT_S = 5.0
# The API answers in well under a second; 30 s leaves room for a slow proxy without holding a slot for long.
DEFAULT_READ_TIMEOUT_S = 30.0
# Connections kept per host, unless told otherwise: a worker process passes its thread count.
POOL_MAXSIZE = 8
# The documented answer while a batch is processing (also for unknown ids and brief outages).
NOT_READY_REASON = "Request not ready yet, try again in 30 seconds"
# Characters that cannot travel in an HTTP header value.
_BAD_HEADER_CHARS = re.compile(r"[\x00-\x20\x7f]")


def _package_version() -> str:
    try:
        return importlib.metadata.version("dropq")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def _network_error(exc: requests.RequestException, method: str, path: str, request_id: str | None) -> DropcontactError:
    """Translate a ``requests`` exception; its text stays in ``__cause__`` (it names the URL, never the key)."""
    where = f"{method} {path}"
    if isinstance(exc, requests.ConnectTimeout):
        return NetworkError(f"{where}: connect timed out", None, None, request_id, True, False)
    if isinstance(exc, requests.Timeout):
        return NetworkError(f"{where}: read timed out", None, None, request_id, True)
    if isinstance(exc, requests.TooManyRedirects | requests.exceptions.InvalidURL):
        return UnexpectedResponseError(f"{where}: {type(exc).__name__}", None, None, request_id)
    kind = "connection failed" if isinstance(exc, requests.ConnectionError) else type(exc).__name__
    # A failure to connect at all (refused, DNS) is urllib3's NewConnectionError: nothing was sent.
    cause = getattr(exc.args[0], "reason", None) if exc.args else None
    never_connected = isinstance(cause, urllib3.exceptions.NewConnectionError)
    return NetworkError(f"{where}: {kind}", None, None, request_id, False, not never_connected)


class DropcontactClient(WebhookSettings):
    """A client of the Dropcontact API over one ``requests.Session``.

    Args:
        api_key: the ``X-Access-Token``; it appears in no message or repr.
        base_url: the API, the sandbox or any compatible server.
        connect_timeout_s: how long to wait for a connection.
        read_timeout_s: how long to wait for each read of the answer.
        session: a session to use (it gets our headers and is not closed by ``close``).
        user_agent: replaces ``dropq/<version>``.
        on_answer: called after each request with its method and HTTP status (None when no answer came):
            how a worker counts its requests for the metrics; it must be quick and never raise.

    Raises:
        ValueError: an empty key, a key that cannot be sent as a header, or a base URL that is not http(s).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        session: requests.Session | None = None,
        user_agent: str | None = None,
        pool_maxsize: int = POOL_MAXSIZE,
        on_answer: Callable[[str, int | None], None] | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if _BAD_HEADER_CHARS.search(api_key):
            raise ValueError("api_key contains whitespace or control characters; it cannot be sent as a header")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError(f"timeouts must be positive, got {connect_timeout_s!r} and {read_timeout_s!r}")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout_s = (connect_timeout_s, read_timeout_s)
        self._on_answer = on_answer
        self._owns_session = session is None
        self._session = session if session is not None else self._new_session(pool_maxsize, self.base_url)
        self._session.headers.update(
            {
                "X-Access-Token": api_key,
                "User-Agent": user_agent or f"dropq/{_package_version()}",
                "Accept": "application/json",
            }
        )

    @staticmethod
    def _new_session(pool_maxsize: int, base_url: str) -> requests.Session:
        session = requests.Session()
        # The environment's proxies (HTTPS_PROXY, NO_PROXY...) and CA bundle (REQUESTS_CA_BUNDLE,
        # CURL_CA_BUNDLE), read once for the API's URL: with trust_env, requests reads every variable of
        # the environment again on each call, a third of its CPU per request. (.netrc is not read: the
        # API key is the only credential sent.)
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            session.verify = ca_bundle
        # One quiet re-attempt, GETs only, when a pooled keep-alive connection turns out dead; never a POST.
        # Statuses are never retried here (429 and 5xx are the caller's, with the limiter asked again).
        retry = Retry(
            total=1,
            connect=0,
            read=1,
            status=0,
            other=0,
            redirect=0,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_maxsize, max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def __repr__(self) -> str:
        return f"DropcontactClient(base_url={self.base_url!r}, api_key=<hidden>)"

    def close(self) -> None:
        """Close the session's connections, if this client created the session."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> DropcontactClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        route: Route,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Any:
        """Send one request and return its decoded JSON body, or raise our error for it."""
        headers = {}
        data = None
        if body is not None:
            # Sent exactly as records.record_size_bytes measured it (compact, UTF-8), not requests' spaced ASCII.
            data = body if isinstance(body, bytes) else to_json_bytes(body)
            headers["Content-Type"] = "application/json"
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout_s,
                allow_redirects=False,
            )
            content = response.content
        except requests.RequestException as exc:
            if self._on_answer is not None:
                self._on_answer(method, None)
            raise _network_error(exc, method, path, request_id) from exc
        if self._on_answer is not None:
            self._on_answer(method, response.status_code)
        try:
            decoded: Any = json_codec.loads(content) if content else None
        except ValueError:
            decoded = content.decode("utf-8", "replace")
        error = error_from_response(
            response.status_code, decoded, response.headers, route=route, secret=self._api_key, request_id=request_id
        )
        if error is not None:
            raise error
        if not isinstance(decoded, Mapping | list):
            snippet = scrub(str(decoded), self._api_key) if decoded else "an empty body"
            message = f"{route.value}: HTTP {response.status_code} with a body that is not JSON: {snippet}"
            raise UnexpectedResponseError(message, response.status_code, None, request_id)
        return decoded

    def _unexpected(self, route: Route, body: Any, what: str, request_id: str | None = None) -> UnexpectedResponseError:
        reason = reason_of(body)
        scrubbed = scrub(reason, self._api_key) if reason else None
        message = f"{route.value}: {what}" + (f": {scrubbed}" if scrubbed else "")
        return UnexpectedResponseError(message, 200, scrubbed, request_id)

    # -- enrich ------------------------------------------------------------------------------------------------

    def submit_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        siren: bool = False,
        language: str | None = None,
        custom_callback_url: str | None = None,
        hashed_inputs: bool = False,
    ) -> SubmitResult:
        """Submit a batch for enrichment (``POST /v1/enrich/all``); sent once, never re-sent here.

        Args:
            records: 1 to 250 prepared payloads (see ``records.prepare_record``).
            siren: ask for French registry data.
            language: ``"en"`` for English results; the API's default is French.
            custom_callback_url: where the API pushes this batch's results.
            hashed_inputs: ask for the ``hashedInputs`` field in the answer.

        Returns:
            The ``request_id`` to fetch results with, and the balance after the charge.

        Raises:
            ValueError: no records, or more than 250.
            InsufficientCreditsError: the balance cannot cover the batch; nothing was charged.
            DropcontactError: any other failure; a ``NetworkError`` leaves it unknown whether the batch was taken.
        """
        body = self.submit_body(records, siren=siren, language=language, custom_callback_url=custom_callback_url)
        return self.submit_encoded(body, hashed_inputs=hashed_inputs)

    @staticmethod
    def submit_body(
        records: Sequence[Mapping[str, Any]],
        *,
        siren: bool = False,
        language: str | None = None,
        custom_callback_url: str | None = None,
    ) -> bytes:
        """The body ``submit_batch`` sends, encoded: a caller holding a rate token encodes it beforehand.

        Raises:
            ValueError: no records, or more than 250.
        """
        if not 1 <= len(records) <= MAX_BATCH_RECORDS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_RECORDS} records, got {len(records)}")
        body: dict[str, Any] = {"data": [dict(record) for record in records], "siren": siren}
        if language is not None:
            body["language"] = language
        if custom_callback_url is not None:
            body["custom_callback_url"] = custom_callback_url
        return to_json_bytes(body)

    def submit_encoded(self, body: bytes, *, hashed_inputs: bool = False) -> SubmitResult:
        """``submit_batch`` with its body encoded by ``submit_body``; the same answers and errors."""
        params = {"hashedInputs": "true"} if hashed_inputs else None
        answer = self._call("POST", "/v1/enrich/all", route=Route.SUBMIT, body=body, params=params)
        request_id = answer.get("request_id") if isinstance(answer, Mapping) else None
        if not isinstance(request_id, str) or not request_id or answer.get("success") is False:
            raise self._unexpected(Route.SUBMIT, answer, "the answer carries no request_id")
        return SubmitResult(request_id, int_or_none(answer.get("credits_left")), answer.get("hashedInputs"))

    def fetch_results(self, request_id: str, *, force: bool = False) -> FetchResult:
        """Fetch a batch's results (``GET /v1/enrich/all/{request_id}``).

        Args:
            request_id: from ``submit_batch``.
            force: ask for what is done so far (``forceResults=true``).

        Returns:
            ``NOT_READY`` with the API's reason while processing (the API answers
            the same for an unknown id), ``IN_PROGRESS`` with partial records
            when forced, ``READY`` with every record, in input order.

        Raises:
            ValueError: an empty ``request_id`` or one holding a ``/``.
            DropcontactError: the call failed or the answer is not a documented one.
        """
        if not isinstance(request_id, str) or not request_id or "/" in request_id:
            raise ValueError(f"request_id must be a non-empty string without '/', got {request_id!r}")
        params = {"forceResults": "true"} if force else None
        path = f"/v1/enrich/all/{request_id}"
        answer = self._call("GET", path, route=Route.FETCH, params=params, request_id=request_id)
        if not isinstance(answer, Mapping):
            raise self._unexpected(Route.FETCH, answer, "the answer is not an object", request_id)
        credits = int_or_none(answer.get("credits_left"))
        data = answer.get("data")
        status = answer.get("status")
        reason = reason_of(answer) if answer.get("success") is not True else None
        if isinstance(data, list) and (answer.get("success") is True or status in ("ready", "in_progress")):
            records = [dict(item) if isinstance(item, Mapping) else {} for item in data]
            state = FetchState.IN_PROGRESS if status == "in_progress" else FetchState.READY
            return FetchResult(state, records, credits, reason)
        if answer.get("success") is False:
            return FetchResult(FetchState.NOT_READY, [], credits, reason or NOT_READY_REASON)
        raise self._unexpected(Route.FETCH, answer, "the answer has neither data nor success: false", request_id)

    # -- credits -----------------------------------------------------------------------------------------------

    def get_credits(self) -> int:
        """Return the balance (``GET /v1/account/credits``); free, costs no credit.

        Returns:
            Credits left, free credits included.

        Raises:
            DropcontactError: the call failed or the answer has no integer ``credits``.
        """
        answer = self._call("GET", "/v1/account/credits", route=Route.CREDITS)
        credits = int_or_none(answer.get("credits")) if isinstance(answer, Mapping) else None
        if credits is None:
            raise self._unexpected(Route.CREDITS, answer, "the answer has no integer credits")
        return credits
