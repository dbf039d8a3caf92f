"""The client against real HTTP: the sandbox for every documented answer, tiny raw servers for the network faults."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dropq.dropcontact.batching import batch_payload, split_into_segments
from dropq.dropcontact.client import DropcontactClient, FetchState
from dropq.dropcontact.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)
from dropq.dropcontact.joining import JoinStatus, join_results
from dropq.dropcontact.records import CORRELATION_FIELD, PreparedRecord, prepare_records
from dropq.workers.embedded import free_port

# The sandbox's per-request fault header (see dropcontact/sandbox/faults.py).
FAULT_HEADER = "X-Sandbox-Fault"
NOT_READY_REASON = "Request not ready yet, try again in 30 seconds"
CONTACTS = [
    {"first_name": "Ada", "last_name": "Lovelace", "website": "example.com"},
    {"email": "grace.hopper@navy.example"},
    {"full_name": "Alan Turing", "company": "Bletchley Park"},
]


def _client(sandbox: Any, *, fault: str | None = None, api_key: str | None = None, **kwargs: Any) -> DropcontactClient:
    session = requests.Session()
    if fault:
        session.headers[FAULT_HEADER] = fault
    return DropcontactClient(api_key or sandbox.api_key, base_url=sandbox.url, session=session, **kwargs)


def _payloads(contacts: list[dict[str, Any]] = CONTACTS) -> list[dict[str, Any]]:
    prepared = [
        outcome
        for outcome in prepare_records(contacts, correlation_id=lambda index: f"job-1:{index}")
        if isinstance(outcome, PreparedRecord)
    ]
    return batch_payload(next(split_into_segments(prepared)).records)


def _wait_until_ready(client: DropcontactClient, request_id: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = client.fetch_results(request_id)
        if result.state is FetchState.READY:
            return result.records
        time.sleep(0.05)
    raise AssertionError(f"batch {request_id} not ready after {timeout_s} s")


# -- enrich ---------------------------------------------------------------------------------------------------


def test_submit_returns_a_request_id_and_the_balance_after_the_charge(sandbox: Any) -> None:
    """POST /v1/enrich/all answers ``request_id`` and ``credits_left``, charged one credit per record."""
    sandbox.configure(credits=100)
    with _client(sandbox) as client:
        submitted = client.submit_batch(_payloads(), siren=True, language="en")
    assert submitted.request_id
    assert submitted.credits_left == 100 - len(CONTACTS)


def test_results_not_ready_are_a_state_not_an_error(sandbox: Any) -> None:
    """While processing, the 200 with ``success: false`` reads as NOT_READY with the API's reason."""
    sandbox.configure(processing_min_s=60, processing_max_s=60)
    with _client(sandbox) as client:
        submitted = client.submit_batch(_payloads())
        result = client.fetch_results(submitted.request_id)
    assert result.state is FetchState.NOT_READY
    assert result.records == []
    assert result.reason == NOT_READY_REASON


def test_an_unknown_request_id_reads_as_not_ready_like_the_api(sandbox: Any) -> None:
    """The API cannot tell an unknown id from a batch in progress, and neither can the client."""
    with _client(sandbox) as client:
        result = client.fetch_results("qzmxkpvlrtdnhwa")
    assert result.state is FetchState.NOT_READY


def test_ready_results_join_back_to_their_rows(sandbox: Any) -> None:
    """Once processed, every record comes back and joins to its row by index and correlation id."""
    sandbox.configure(processing_min_s=0, processing_max_s=0, no_email_probability=0)
    sent = _payloads()
    with _client(sandbox) as client:
        records = _wait_until_ready(client, client.submit_batch(sent, language="en").request_id)
    joined = join_results(sent, records)
    assert [item.correlation_id for item in joined] == ["job-1:0", "job-1:1", "job-1:2"]
    assert all(item.status is not JoinStatus.MISSING for item in joined)
    assert [item.result["custom_fields"][CORRELATION_FIELD] for item in joined if item.result] == [
        "job-1:0",
        "job-1:1",
        "job-1:2",
    ]


def test_a_custom_callback_url_receives_the_batchs_results(sandbox: Any, webhook_sink: Any) -> None:
    """``custom_callback_url`` is sent, and the pushed results join back to the rows sent."""
    sandbox.configure(processing_min_s=0, processing_max_s=0)
    sent = _payloads()
    with _client(sandbox) as client:
        request_id = client.submit_batch(sent, custom_callback_url=webhook_sink.url).request_id
    (events,) = webhook_sink.wait_for(1)
    (event,) = events
    assert event["data"]["request_id"] == request_id
    joined = join_results(sent, event["data"]["data"])
    assert all(item.status is not JoinStatus.MISSING for item in joined)


def test_forced_results_while_processing_are_in_progress(sandbox: Any) -> None:
    """``forceResults=true`` before the end gives IN_PROGRESS with a record for every input."""
    sandbox.configure(processing_min_s=60, processing_max_s=60)
    sent = _payloads()
    with _client(sandbox) as client:
        result = client.fetch_results(client.submit_batch(sent).request_id, force=True)
    assert result.state is FetchState.IN_PROGRESS
    assert len(result.records) == len(sent)
    assert result.credits_left is not None


def test_forced_results_once_done_are_ready(sandbox: Any) -> None:
    """``forceResults=true`` on a finished batch gives READY."""
    sandbox.configure(processing_min_s=0, processing_max_s=0)
    with _client(sandbox) as client:
        request_id = client.submit_batch(_payloads()).request_id
        _wait_until_ready(client, request_id)
        result = client.fetch_results(request_id, force=True)
    assert result.state is FetchState.READY
    assert len(result.records) == len(CONTACTS)


def test_a_record_over_15_kb_is_refused_with_the_apis_reason(sandbox: Any) -> None:
    """A record the API finds too big raises InvalidRequestError with its exact message, and costs nothing."""
    sandbox.configure(credits=10)
    oversized = {"company": "Acme", "custom_fields": {"note": "x" * 16_000}}
    with _client(sandbox) as client:
        with pytest.raises(InvalidRequestError) as caught:
            client.submit_batch([oversized])
        assert client.get_credits() == 10
    assert caught.value.status == 400
    assert caught.value.reason == "Data size is too big, you can only submit up to 15 kB of data in a single record"


def test_not_enough_credits_refuses_the_whole_batch(sandbox: Any) -> None:
    """A 403 on submit is InsufficientCreditsError, not retryable, and nothing is charged."""
    sandbox.configure(credits=2)
    with _client(sandbox) as client:
        with pytest.raises(InsufficientCreditsError) as caught:
            client.submit_batch(_payloads())
        assert client.get_credits() == 2
    assert caught.value.status == 403
    assert not caught.value.is_retryable


# -- credits --------------------------------------------------------------------------------------------------


def test_credits_are_read_without_spending_any(sandbox: Any) -> None:
    """GET /v1/account/credits returns the balance and leaves it unchanged."""
    sandbox.configure(credits=1234)
    with _client(sandbox) as client:
        assert client.get_credits() == 1234
        assert client.get_credits() == 1234


# -- authentication -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.submit_batch(_payloads()),
        lambda client: client.fetch_results("qzmxkpvlrtdnhwa"),
        lambda client: client.get_credits(),
        lambda client: client.get_default_webhook(),
    ],
    ids=["submit", "fetch", "credits", "webhook"],
)
def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(sandbox: Any, call: Any) -> None:
    """401 on every endpoint; the key is in no message, reason, repr or args."""
    wrong_key = "wrong-key-that-must-not-leak"
    with _client(sandbox, api_key=wrong_key) as client, pytest.raises(AuthenticationError) as caught:
        call(client)
    error = caught.value
    assert error.status == 401
    assert not error.is_retryable
    for text in (str(error), repr(error), repr(error.args), error.reason or ""):
        assert wrong_key not in text


# -- transient answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 504, 524])
def test_server_errors_are_retryable_with_their_status(sandbox: Any, status: int) -> None:
    """5xx and Cloudflare's 524 (JSON or an HTML page) become ServerError."""
    with _client(sandbox, fault=str(status)) as client, pytest.raises(ServerError) as caught:
        client.fetch_results("qzmxkpvlrtdnhwa")
    assert caught.value.status == status
    assert caught.value.is_retryable


def test_a_server_error_on_submit_is_raised_once_not_retried(sandbox: Any) -> None:
    """A 503 on POST surfaces at once; the client sends the batch a single time."""
    with _client(sandbox, fault="503") as client, pytest.raises(ServerError):
        client.submit_batch(_payloads())
    assert sandbox.stats()["requests"]["POST /v1/enrich/all"] == 1


def test_too_many_requests_is_rate_limited(sandbox: Any) -> None:
    """A 429 is RateLimitedError, retryable, with any wait the server suggested."""
    with _client(sandbox, fault="429") as client, pytest.raises(RateLimitedError) as caught:
        client.get_credits()
    assert caught.value.status == 429
    assert caught.value.is_retryable
    assert caught.value.retry_after_s is None or caught.value.retry_after_s >= 0


def test_a_lost_answer_to_a_submit_is_a_network_error_after_the_charge(sandbox: Any) -> None:
    """The API took the batch but the answer was lost: the caller sees a NetworkError and must reconcile."""
    sandbox.configure(credits=100)
    with _client(sandbox, fault="lost-response") as client, pytest.raises(NetworkError):
        client.submit_batch(_payloads())
    with _client(sandbox) as client:
        assert client.get_credits() == 100 - len(CONTACTS)


def test_a_slow_answer_past_the_read_timeout_is_a_timeout(sandbox: Any) -> None:
    """The sandbox holding its answer longer than the read timeout gives NetworkError(is_timeout=True)."""
    with (
        _client(sandbox, fault="slow=2", read_timeout_s=0.3) as client,
        pytest.raises(NetworkError) as caught,
    ):
        client.get_credits()
    assert caught.value.is_timeout


# -- network faults on raw sockets ----------------------------------------------------------------------------


def test_connection_refused_is_a_network_error() -> None:
    """Nothing listening on the port: NetworkError, not a timeout, retryable."""
    with (
        DropcontactClient("k", base_url=f"http://127.0.0.1:{free_port()}") as client,
        pytest.raises(NetworkError) as caught,
    ):
        client.get_credits()
    assert not caught.value.is_timeout
    assert caught.value.is_retryable
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


class _SilentServer:
    """Accepts connections, reads the request, and then answers nothing (or hangs up)."""

    def __init__(self, *, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.requests_seen = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(1.0)
            try:
                if connection.recv(65536):
                    self.requests_seen += 1
            except OSError:
                pass
            if self.hang_up:
                connection.close()
            else:
                self._held.append(connection)

    def __enter__(self) -> _SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._listener.close()


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    """Connected, request sent, no answer: NetworkError(is_timeout=True) after the read timeout."""
    with (
        _SilentServer(hang_up=False) as server,
        DropcontactClient("k", base_url=server.url, read_timeout_s=0.2) as client,
        pytest.raises(NetworkError) as caught,
    ):
        client.submit_batch([{"company": "Acme"}])
    assert caught.value.is_timeout
    assert server.requests_seen == 1


def test_a_dropped_connection_is_never_retried_for_a_post_and_once_for_a_get() -> None:
    """A POST that may have arrived is not sent again; an idempotent GET gets one quiet re-attempt."""
    with _SilentServer(hang_up=True) as server, DropcontactClient("k", base_url=server.url) as client:
        with pytest.raises(NetworkError):
            client.submit_batch([{"company": "Acme"}])
        time.sleep(0.1)
        assert server.requests_seen == 1
        with pytest.raises(NetworkError):
            client.get_credits()
        time.sleep(0.1)
        assert server.requests_seen == 3


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the class's canned answer and keeps what it received."""

    seen: list[tuple[str, str, dict[str, str], bytes]] = []
    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        type(self).seen.append((self.command, self.path, dict(self.headers), body))
        status, headers, payload = type(self).answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def recording_server() -> Iterator[tuple[str, type[_RecordingHandler]]]:
    """A real HTTP server on a free port whose answer each test sets."""
    handler = type("Handler", (_RecordingHandler,), {"seen": [], "answer": (200, {}, b"{}")})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_requests_carry_the_key_the_user_agent_and_compact_json(
    recording_server: tuple[str, type[_RecordingHandler]],
) -> None:
    """The wire shows X-Access-Token, User-Agent dropq/<version> and the body measured by records."""
    url, handler = recording_server
    handler.answer = (200, {}, b'{"credits_left":9,"request_id":"abc","error":false,"success":true}')
    sent = _payloads([{"company": "Zoë & Co"}])
    with DropcontactClient("the-key", base_url=url) as client:
        client.submit_batch(sent, language="en", custom_callback_url="https://hooks.example/x", hashed_inputs=True)
    method, path, headers, body = handler.seen[0]
    assert (method, path) == ("POST", "/v1/enrich/all?hashedInputs=true")
    assert headers["X-Access-Token"] == "the-key"
    assert headers["User-Agent"].startswith("dropq/")
    assert headers["Content-Type"] == "application/json"
    assert body.startswith(b'{"data":[{"company":"Zo\xc3\xab & Co","custom_fields":{"dropq_ref":"job-1:0"}}]')
    assert b'"custom_callback_url":"https://hooks.example/x"' in body


def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(
    recording_server: tuple[str, type[_RecordingHandler]],
) -> None:
    """A 3xx is an UnexpectedResponseError; the client never re-sends its key to another location."""
    url, handler = recording_server
    handler.answer = (302, {"Location": f"{url}/elsewhere"}, b"")
    with DropcontactClient("the-key", base_url=url) as client, pytest.raises(UnexpectedResponseError):
        client.get_credits()
    assert [path for _, path, _, _ in handler.seen] == ["/v1/account/credits"]


@pytest.mark.parametrize(
    "body",
    [b"<html>maintenance</html>", b'{"success": true}', b'{"error": false, "success": false, "reason": "nope"}'],
)
def test_a_submit_answer_without_request_id_is_never_taken_for_success(
    recording_server: tuple[str, type[_RecordingHandler]], body: bytes
) -> None:
    """A 200 that is not JSON, lacks ``request_id`` or says ``success: false`` raises UnexpectedResponseError."""
    url, handler = recording_server
    handler.answer = (200, {}, body)
    with DropcontactClient("k", base_url=url) as client, pytest.raises(UnexpectedResponseError):
        client.submit_batch([{"company": "Acme"}])


def test_retry_after_is_read_from_a_real_429(recording_server: tuple[str, type[_RecordingHandler]]) -> None:
    """A ``Retry-After`` header on a 429 becomes ``retry_after_s``."""
    url, handler = recording_server
    handler.answer = (429, {"Retry-After": "3"}, b'{"error":true,"reason":"Too many requests","success":false}')
    with DropcontactClient("k", base_url=url) as client, pytest.raises(RateLimitedError) as caught:
        client.get_credits()
    assert caught.value.retry_after_s == 3.0


# -- default webhook ------------------------------------------------------------------------------------------


def test_default_webhook_can_be_set_read_and_deleted(sandbox: Any) -> None:
    """PUT, GET and DELETE /v1/enrich/webhook: none at first, then the URL, then none again."""
    with _client(sandbox) as client:
        assert client.get_default_webhook() is None
        assert client.set_default_webhook("https://hooks.example/dropq") == "https://hooks.example/dropq"
        assert client.get_default_webhook() == "https://hooks.example/dropq"
        client.delete_default_webhook()
        assert client.get_default_webhook() is None


def test_deleting_a_missing_default_webhook_is_not_found(sandbox: Any) -> None:
    """404 "No default webhook URL to delete" is NotFoundError with that reason."""
    with _client(sandbox) as client, pytest.raises(NotFoundError) as caught:
        client.delete_default_webhook()
    assert caught.value.reason == "No default webhook URL to delete"


def test_an_invalid_default_webhook_body_is_a_validation_error(sandbox: Any) -> None:
    """A 422 from the webhook endpoint is InvalidRequestError carrying FastAPI's message."""
    with _client(sandbox) as client, pytest.raises(InvalidRequestError) as caught:
        client.set_default_webhook("")
    assert caught.value.status == 422
    assert caught.value.reason


# -- legacy subscriptions -------------------------------------------------------------------------------------


def test_subscriptions_can_be_created_listed_edited_and_deleted(sandbox: Any) -> None:
    """The old docs' /v1/webhooks/subscriptions CRUD, end to end."""
    with _client(sandbox) as client:
        subscription_id = client.create_subscription("https://hooks.example/a", period_s=5, max_webhooks_per_period=30)
        listed = client.list_subscriptions()
        assert [item.id for item in listed] == [subscription_id]
        assert listed[0].callback_url == "https://hooks.example/a"
        assert listed[0].event_type == "enrich_api_result"
        client.update_subscription(subscription_id, active=False, callback_url="https://hooks.example/b")
        (edited,) = client.list_subscriptions()
        assert (edited.active, edited.callback_url) == (False, "https://hooks.example/b")
        client.delete_subscription(subscription_id)
        assert client.list_subscriptions() == []


def test_an_unknown_subscription_is_not_found(sandbox: Any) -> None:
    """Editing or deleting an id that does not exist is NotFoundError."""
    with _client(sandbox) as client:
        with pytest.raises(NotFoundError):
            client.delete_subscription("does-not-exist")
        with pytest.raises(NotFoundError):
            client.update_subscription("does-not-exist", active=True)


def test_the_environment_s_proxy_is_read_once_when_the_client_is_made(sandbox: Any, monkeypatch: Any) -> None:
    """HTTP_PROXY taken at creation (a dead proxy: the call fails), NO_PROXY honoured, later changes not read."""
    sandbox.configure(credits=7)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with DropcontactClient(sandbox.api_key, base_url=sandbox.url) as proxied:
        monkeypatch.delenv("HTTP_PROXY")
        with pytest.raises(NetworkError):
            proxied.get_credits()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with DropcontactClient(sandbox.api_key, base_url=sandbox.url) as direct:
        assert direct.get_credits() == 7
