"""The webhook receiver: a small HTTP server the API pushes results to (``dropq webhooks``).

``POST {DROPQ_WEBHOOK_URL}/dropq/webhook/{token}`` is the only route that does
anything; ``GET /healthz`` answers ``ok``. The receiver answers quickly and
leaves the work to the sink task it enqueues. Put it behind your HTTPS
reverse proxy and set ``DROPQ_WEBHOOK_URL`` to its public base URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from dropq.workers.pipeline.followup import Followup
from dropq.workers.runtime import Runtime
from dropq.workers.webhooks import CALLBACK_PATH, receive_push

__all__ = ["create_receiver_app"]

_log = structlog.get_logger(__name__)

# A push bigger than this is not a Dropcontact result (250 records of at most 15 kB, plus room).
MAX_BODY_BYTES = 8 * 1024 * 1024


def create_receiver_app(runtime: Callable[[], Runtime], send: Callable[[Followup], None]) -> Starlette:
    """Build the receiver.

    Args:
        runtime: gives the process's runtime (Redis, stores, settings).
        send: sends a follow-up message (the sink of a batch whose results arrived).
    """

    async def push(request: Request) -> JSONResponse:
        token = request.path_params["token"]
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"accepted": False, "outcome": "too_large"}, status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"accepted": False, "outcome": "not_json"}, status_code=400)
        verdict = await run_in_threadpool(receive_push, runtime(), token, payload)
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
