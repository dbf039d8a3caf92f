"""The webhook receiver: a small HTTP server the API pushes results to (``dropq webhooks``).

``POST {DROPQ_WEBHOOK_URL}/dropq/webhook/{token}`` is the only route that does
anything; ``GET /healthz`` answers ``ok``. The receiver answers quickly and
leaves the work to the sink task it enqueues. Put it behind your HTTPS
reverse proxy and set ``DROPQ_WEBHOOK_URL`` to its public base URL.

It checks before it reads: the token first (an unknown one is answered 404
without reading a byte of the body), then the size (a declared
``Content-Length`` over ``DROPQ_WEBHOOK_MAX_BODY_BYTES`` is answered 413 at
once, and a streamed body stops being read as soon as it passes the limit),
and only then parses; a body that takes longer than ``BODY_TIMEOUT_S`` gets
408. Its memory stays flat whatever a stranger sends, and its connections are
bounded (``dropq.http_server``: head timeout, idle timeout, head size, count).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from dropq.http_server import BODY_TIMEOUT_S, BodyTooLarge, read_limited
from dropq.workers import keys
from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime
from dropq.workers.webhooks import CALLBACK_PATH, receive_push

__all__ = ["create_receiver_app"]

_log = structlog.get_logger(__name__)


def _refused(status: int, outcome: str) -> JSONResponse:
    _log.info("webhook_received", outcome=outcome, status=status)
    # Closed after the answer: the rest of a body not read must not be read as the next request.
    return JSONResponse({"accepted": False, "outcome": outcome}, status_code=status, headers={"Connection": "close"})


def create_receiver_app(runtime: Callable[[], Runtime], send: Callable[[Followup], None]) -> Starlette:
    """Build the receiver.

    Args:
        runtime: gives the process's runtime (Redis, stores, settings).
        send: sends a follow-up message (the sink of a batch whose results arrived).
    """

    async def push(request: Request) -> JSONResponse:
        token = request.path_params["token"]
        rt = runtime()
        if not await run_in_threadpool(rt.redis.exists, keys.webhook_token_key(token)):
            return _refused(404, "unknown_token")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                body = await read_limited(request, rt.settings.webhook_max_body_bytes)
        except BodyTooLarge:
            return _refused(413, "too_large")
        except TimeoutError:
            return _refused(408, "body_too_slow")
        try:
            payload = json.loads(body)
        except ValueError:
            return _refused(400, "not_json")
        verdict = await run_in_threadpool(receive_push, rt, token, payload)
        for item in verdict.followups:
            await run_in_threadpool(send, item)
        # The token is the credential: it is never logged.
        _log.info("webhook_received", outcome=verdict.outcome, status=verdict.status)
        return JSONResponse({"accepted": verdict.status < 300, "outcome": verdict.outcome}, status_code=verdict.status)

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(f"{CALLBACK_PATH}/{{token}}", push, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
