"""The limits every HTTP server of dropq runs with (the webhook receiver, the sandbox): safe to leave running.

uvicorn closes idle keep-alive connections and bounds a request's head, but
gives a client all the time it wants to send that head: a few hundred
connections each sending a byte a second would hold the server. The protocol
here closes a connection whose request head has not arrived whole within
``HEAD_TIMEOUT_S`` of the connection (or of the previous answer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_TIMEOUT_S", "HEAD_TIMEOUT_S", "BodyTooLarge", "HeadTimeoutProtocol", "read_limited", "server_limits"]

# A request's head must arrive within this, and may not pass MAX_HEAD_BYTES.
HEAD_TIMEOUT_S = 10.0
MAX_HEAD_BYTES = 16 * 1024
# A receiver reads a request's body within this (the webhook receiver answers 408 past it).
BODY_TIMEOUT_S = 30.0
# An idle keep-alive connection is closed after this.
KEEP_ALIVE_S = 5
# Connections served at once; more get 503 (a flood cannot take every file descriptor).
MAX_CONNECTIONS = 256


class BodyTooLarge(Exception):
    """A request body over its limit: answer 413 without reading the rest."""


async def read_limited(request: Request, limit: int) -> bytearray:
    """The body, read only while it stays within ``limit`` bytes (declared or streamed): no stranger fills the memory.

    Raises:
        BodyTooLarge: the declared ``Content-Length``, or the bytes streamed so far, pass ``limit``.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    # Not copied into bytes: json.loads reads a bytearray, and a copy would double the peak.
    return body


class HeadTimeoutProtocol(H11Protocol):  # type: ignore[misc]  # uvicorn's protocol classes are not typed
    """uvicorn's h11 protocol, closing a connection whose request head is late."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection, and start waiting for its first request head."""
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        """Read, and stop the head timer once a whole head is in."""
        super().data_received(data)
        if self._head_timer is not None and self.conn.their_state is not h11.IDLE:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        """The next request's head on this connection gets the same time."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop waiting for a head that will not come."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()


def server_limits() -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` (and ``uvicorn.run``) that set these limits."""
    return {
        "http": HeadTimeoutProtocol,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "limit_concurrency": MAX_CONNECTIONS,
    }
