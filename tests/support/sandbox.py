"""Fixtures for the sandbox emulator: one real server per session, reset before each test.

- ``sandbox_server`` (session): a ``SandboxServer`` on 127.0.0.1 and a free port, seed fixed,
  batches processed in 0.05 to 0.2 s.
- ``sandbox`` (function): the same server, reset to those knobs; tests change them with
  ``sandbox.configure(...)`` and judge a client with ``sandbox.stats()``.
- ``webhook_sink`` (function): a real HTTP receiver (Starlette on uvicorn) that records every
  push, for webhook tests; its ``status`` can be set to make the receiver fail.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropq.dropcontact.sandbox import SandboxConfig, SandboxServer
from dropq.dropcontact.sandbox.server import bind_socket

__all__ = [
    "SANDBOX_SEED",
    "WebhookSink",
    "sandbox_server",
    "sandbox",
    "webhook_sink",
    "serve_posts",
    "post_batch",
    "get_results",
    "wait_for_results",
]

SANDBOX_SEED = 20240601
# Small enough for fast tests, long enough that a GET right after the POST sees "not ready".
TEST_PROCESSING_MIN_S = 0.05
TEST_PROCESSING_MAX_S = 0.2
# The tests' sandbox accepts knob changes over HTTP with this key.
TEST_CONTROL_KEY = "test-control-key"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox for the whole session, on a free port, with short processing times."""
    config = SandboxConfig(
        host="127.0.0.1",
        port=0,
        seed=SANDBOX_SEED,
        processing_min_s=TEST_PROCESSING_MIN_S,
        processing_max_s=TEST_PROCESSING_MAX_S,
        control_key=TEST_CONTROL_KEY,
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox, reset to its starting knobs and empty stats."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@dataclass
class WebhookSink:
    """What a receiver got: the JSON bodies of the pushes, in order of arrival."""

    url: str = ""
    status: int = 200
    bodies: list[object] = field(default_factory=list)
    arrival_times: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: object) -> None:
        """Keep one push."""
        with self._lock:
            self.bodies.append(body)
            self.arrival_times.append(time.monotonic())

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[object]:
        """Wait until at least ``count`` pushes arrived (bounded), and return them all."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.bodies) >= count:
                    return list(self.bodies)
            time.sleep(0.01)
        with self._lock:
            return list(self.bodies)


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """A real webhook receiver on a free port; every POST to any path is recorded."""
    sink = WebhookSink()

    async def receive(request: Request) -> Response:
        sink.record(json.loads(await request.body()))
        return Response(status_code=sink.status)

    with serve_posts(receive) as base_url:
        sink.url = f"{base_url}/hook"
        yield sink


@contextmanager
def serve_posts(receive: Callable[[Request], Awaitable[Response]]) -> Iterator[str]:
    """Serve ``receive`` for POSTs to any path, on a free port, from a thread; yields the base URL."""
    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(5)


def post_batch(server: SandboxServer, body: object, **headers: str) -> requests.Response:
    """POST ``body`` to ``/v1/enrich/all`` with the sandbox's key (and any extra headers)."""
    return requests.post(
        f"{server.url}/v1/enrich/all", json=body, headers={"X-Access-Token": server.api_key, **headers}, timeout=10
    )


def get_results(server: SandboxServer, request_id: str, *, force: bool = False) -> requests.Response:
    """GET ``/v1/enrich/all/{request_id}`` (with ``forceResults=true`` when ``force``)."""
    query = "?forceResults=true" if force else ""
    return requests.get(
        f"{server.url}/v1/enrich/all/{request_id}{query}", headers={"X-Access-Token": server.api_key}, timeout=10
    )


def wait_for_results(server: SandboxServer, request_id: str, timeout_s: float = 5.0) -> dict[str, object]:
    """Poll a batch every 20 ms, for at most ``timeout_s``, and return its ready body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, object] = get_results(server, request_id).json()
        if body["success"] or time.monotonic() > deadline:
            return body
        time.sleep(0.02)
