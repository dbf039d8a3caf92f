"""The sandbox as an ASGI app (Starlette): the API's routes, its envelopes, and the control plane.

Every API request goes through the same steps, in this order: counted in the
stats; a fault chosen (header ``X-Sandbox-Fault`` or the probabilities) and, if
it is a drop or a forced status, answered so; the ``X-Access-Token`` checked
(401); the rate limit applied (429); then the endpoint. The ``answer_delay_s``
knob (a remote API's latency) and a slow fault hold the
answer after the work is done, and a lost response drops the connection after
it, so a client sees exactly what a flaky network would show it.

Control plane, under ``/_sandbox`` (a prefix the API does not use; not rate
limited, not counted): ``GET /_sandbox/stats`` and ``GET /_sandbox/config``
(the keys never shown) for anyone; ``POST /_sandbox/config`` (a JSON object of
knob changes) and ``POST /_sandbox/reset`` (optional changes on top of the
initial knobs) only with ``X-Sandbox-Control-Key`` equal to the ``control_key``
knob, and not at all when it is empty (the default): a sandbox left running
cannot be locked or reconfigured by a stranger. No body is read past its
limit (``MAX_API_BODY_BYTES``, ``MAX_CONTROL_BODY_BYTES``): 413.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dropq.dropcontact.sandbox import envelopes
from dropq.dropcontact.sandbox.config import SandboxConfig, SandboxConfigError
from dropq.dropcontact.sandbox.faults import FAULT_HEADER, FaultHeaderError
from dropq.dropcontact.sandbox.runtime import SandboxRuntime
from dropq.dropcontact.sandbox.state import Answer
from dropq.dropcontact.sandbox.submission import Refusal, read_submission
from dropq.http_server import BodyTooLarge, read_limited

__all__ = ["create_app", "CONTROL_PREFIX"]

CONTROL_PREFIX = "/_sandbox"
# Changing knobs over HTTP needs this header, equal to the sandbox's control_key.
CONTROL_KEY_HEADER = "X-Sandbox-Control-Key"
CONTROL_KEY_MISSING = "knobs cannot change over HTTP: start the sandbox with --control-key KEY"
CONTROL_KEY_WRONG = "wrong or missing X-Sandbox-Control-Key"
# No body is read past these: an API request (250 records of 15 kB fit), a control request.
MAX_API_BODY_BYTES = 8 * 1024 * 1024
MAX_CONTROL_BODY_BYTES = 64 * 1024
_JSON = "application/json"
_Handler = Callable[[SandboxRuntime, Request], Awaitable[Answer]]


class _ConnectionDropped(Exception):
    """Raised to cut a connection when the server gives no way to abort it cleanly."""


async def _drop_connection(request: Request) -> None:
    # uvicorn's receive() is a method of the request cycle, which holds the socket's transport:
    # aborting it closes the connection with no answer at all, as a network failure would.
    transport = getattr(getattr(request.receive, "__self__", None), "transport", None)
    if transport is None:
        raise _ConnectionDropped
    transport.abort()
    # Let the server see the connection lost before this handler returns, so it neither answers nor logs.
    for _ in range(3):
        await asyncio.sleep(0)


def _fault_answer(status: int, uses_detail: bool) -> Response:
    if status == 429:
        body = (
            envelopes.detail_body(envelopes.RATE_LIMITED)
            if uses_detail
            else envelopes.reason_body(envelopes.RATE_LIMITED)
        )
        return Response(body, 429, media_type=_JSON)
    if status == 500:
        return Response(envelopes.detail_body(envelopes.INTERNAL_ERROR), 500, media_type=_JSON)
    return Response(envelopes.cdn_error_page(status), status, media_type="text/html")


def _api(
    runtime: SandboxRuntime, template: str, handler: _Handler, *, uses_detail: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint in the steps every API request goes through (see the module docstring)."""

    async def endpoint(request: Request) -> Response:
        now = runtime.clock()
        with runtime.lock:
            state = runtime.state
            state.stats.record_arrival(f"{request.method} {template}", now, is_api=True)
            try:
                fault = state.choose_fault(now, request.headers.get(FAULT_HEADER))
            except FaultHeaderError as exc:
                return Response(envelopes.detail_body(str(exc)), 400, media_type=_JSON)
            api_key = state.config.api_key
            answer_delay_s = state.config.answer_delay_s
        if fault.drop:
            with runtime.lock:
                state.stats.faults["drop"] += 1
            await _drop_connection(request)
            return Response(status_code=204)
        if fault.status is not None:
            response = _fault_answer(fault.status, uses_detail)
            with runtime.lock:
                state.stats.faults[str(fault.status)] += 1
        elif not secrets.compare_digest(request.headers.get("x-access-token", "").encode(), api_key.encode()):
            body = (
                envelopes.detail_body(envelopes.INVALID_KEY)
                if uses_detail
                else envelopes.reason_body(envelopes.INVALID_KEY)
            )
            response = Response(body, 401, media_type=_JSON)
        else:
            with runtime.lock:
                is_admitted = state.admit(now)
            if is_admitted:
                request.state.webhook_fault = fault.webhook
                try:
                    answer = await handler(runtime, request)
                    response = Response(answer.body, answer.status, media_type=_JSON)
                except BodyTooLarge:
                    response = _too_large()
            else:
                response = _fault_answer(429, uses_detail)
        if fault.delay_s:
            with runtime.lock:
                state.stats.faults["slow"] += 1
        if fault.delay_s or answer_delay_s:
            await asyncio.sleep(fault.delay_s + answer_delay_s)
        if fault.lose_response:
            with runtime.lock:
                state.stats.faults["lost_response"] += 1
            await _drop_connection(request)
            return response
        with runtime.lock:
            state.stats.record_status(response.status_code)
        return response

    return endpoint


def _too_large() -> Response:
    return Response(
        envelopes.detail_body("Request Entity Too Large"), 413, media_type=_JSON, headers={"Connection": "close"}
    )


async def _json_body(request: Request, limit: int) -> object:
    raw = await read_limited(request, limit)
    try:
        return json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        return _INVALID_JSON


_INVALID_JSON = object()
_INVALID_JSON_ANSWER = Answer(422, envelopes.validation_body(["body", 0], "JSON decode error", "json_invalid"))


async def _submit(runtime: SandboxRuntime, request: Request) -> Answer:
    checked = read_submission(await read_limited(request, MAX_API_BODY_BYTES), request.query_params)
    if isinstance(checked, Refusal):
        return Answer(checked.status, checked.body)
    with runtime.lock:
        answer = runtime.state.submit(checked, runtime.clock(), request.state.webhook_fault)
    runtime.pusher.wake()
    return answer


async def _fetch(runtime: SandboxRuntime, request: Request) -> Answer:
    force = request.query_params.get("forceResults", "").strip().lower() in ("true", "1")
    with runtime.lock:
        return runtime.state.fetch(request.path_params["request_id"], runtime.clock(), force=force)


async def _credits(runtime: SandboxRuntime, request: Request) -> Answer:
    with runtime.lock:
        return runtime.state.credits(runtime.clock())


async def _default_webhook(runtime: SandboxRuntime, request: Request) -> Answer:
    body = await _json_body(request, MAX_API_BODY_BYTES) if request.method == "PUT" else None
    if body is _INVALID_JSON:
        return _INVALID_JSON_ANSWER
    with runtime.lock:
        state = runtime.state
        if request.method == "PUT":
            return state.set_default_webhook(body)
        if request.method == "DELETE":
            return state.delete_default_webhook()
        return state.get_default_webhook()


async def _subscriptions(runtime: SandboxRuntime, request: Request) -> Answer:
    body = await _json_body(request, MAX_API_BODY_BYTES) if request.method in ("POST", "PUT") else None
    if body is _INVALID_JSON:
        return _INVALID_JSON_ANSWER
    subscription_id = request.path_params.get("subscription_id", "")
    with runtime.lock:
        state = runtime.state
        if request.method == "POST":
            answer = state.create_subscription(body)
        elif request.method == "PUT":
            answer = state.edit_subscription(subscription_id, body)
        elif request.method == "DELETE":
            answer = state.delete_subscription(subscription_id)
        else:
            answer = state.list_subscriptions()
    runtime.pusher.wake()
    return answer


def _control_routes(runtime: SandboxRuntime) -> list[Route]:
    def config_response(config: SandboxConfig) -> Response:
        return Response(envelopes.dump(config.to_public_dict()), 200, media_type=_JSON)

    async def changes_of(request: Request) -> dict[str, object]:
        body = await _json_body(request, MAX_CONTROL_BODY_BYTES)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise SandboxConfigError("body", body, "a JSON object of knob changes")
        if "control_key" in body:
            raise SandboxConfigError("control_key", "...", "set where the sandbox starts, never over HTTP")
        return body

    def refused(request: Request) -> Response | None:
        """403 unless the request carries the control key (and one is set): knobs change by the key alone."""
        key = runtime.config.control_key
        given = request.headers.get(CONTROL_KEY_HEADER, "")
        if key and secrets.compare_digest(given.encode(), key.encode()):
            return None
        why = CONTROL_KEY_MISSING if not key else CONTROL_KEY_WRONG
        return Response(envelopes.detail_body(why), 403, media_type=_JSON)

    async def stats(request: Request) -> Response:
        return Response(envelopes.dump(runtime.stats()), 200, media_type=_JSON)

    async def config(request: Request) -> Response:
        if request.method == "GET":
            return config_response(runtime.config)
        if (answer := refused(request)) is not None:
            return answer
        try:
            return config_response(runtime.configure(**await changes_of(request)))
        except SandboxConfigError as exc:
            return Response(envelopes.detail_body(str(exc)), 400, media_type=_JSON)
        except BodyTooLarge:
            return _too_large()

    async def reset(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            return config_response(runtime.reset(**await changes_of(request)))
        except SandboxConfigError as exc:
            return Response(envelopes.detail_body(str(exc)), 400, media_type=_JSON)
        except BodyTooLarge:
            return _too_large()

    return [
        Route(f"{CONTROL_PREFIX}/stats", stats, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/config", config, methods=["GET", "POST"]),
        Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
    ]


def create_app(config: SandboxConfig | None = None, *, runtime: SandboxRuntime | None = None) -> Starlette:
    """Build the sandbox's ASGI app.

    Args:
        config: the knobs (defaults when omitted); ignored when ``runtime`` is given.
        runtime: an existing runtime to serve, e.g. one a ``SandboxServer`` also inspects.

    Returns:
        A Starlette app; its lifespan starts and stops the webhook pusher, and
        ``app.state.sandbox`` is the runtime.
    """
    runtime = runtime or SandboxRuntime(config or SandboxConfig())

    async def http_error(request: Request, exc: Exception) -> Response:
        # Unknown routes and methods answer like FastAPI: {"detail": "Not Found"} / "Method Not Allowed".
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else envelopes.INTERNAL_ERROR
        if not request.url.path.startswith(CONTROL_PREFIX):
            with runtime.lock:
                runtime.state.stats.record_arrival(f"{request.method} (unmatched)", runtime.clock(), is_api=True)
                runtime.state.stats.record_status(status)
        headers = getattr(exc, "headers", None)
        return Response(envelopes.detail_body(detail), status, headers=headers, media_type=_JSON)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime.pusher.start()
        try:
            yield
        finally:
            runtime.pusher.stop()

    routes = [
        Route("/v1/enrich/all", _api(runtime, "/v1/enrich/all", _submit), methods=["POST"]),
        Route("/v1/enrich/all/{request_id}", _api(runtime, "/v1/enrich/all/{request_id}", _fetch), methods=["GET"]),
        Route(
            "/v1/enrich/webhook",
            _api(runtime, "/v1/enrich/webhook", _default_webhook),
            methods=["PUT", "GET", "DELETE"],
        ),
        Route(
            "/v1/account/credits",
            _api(runtime, "/v1/account/credits", _credits, uses_detail=True),
            methods=["GET"],
        ),
        Route(
            "/v1/webhooks/subscriptions",
            _api(runtime, "/v1/webhooks/subscriptions", _subscriptions),
            methods=["POST", "GET"],
        ),
        Route(
            "/v1/webhooks/subscriptions/{subscription_id}",
            _api(runtime, "/v1/webhooks/subscriptions/{subscription_id}", _subscriptions),
            methods=["PUT", "DELETE"],
        ),
        *_control_routes(runtime),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.sandbox = runtime
    return app
