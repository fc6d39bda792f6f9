"""The gateway's ASGI entry point: ``/health``, the hot path, then Host dispatch to services.

Every request is first classified by the compiled hot path (Host → service; for invocation
paths also the route, the bearer credential and its ``invoke_function`` scope). Invocation
requests are answered here without entering Starlette; everything else goes to the embedded
service app for its host. An unknown host is a 404 problem, never a fall-through.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson

from cext.hotpath import (
    DECIDE_BAD_BEARER,
    DECIDE_BAD_ID,
    DECIDE_CACHE_MISS,
    DECIDE_FORBIDDEN,
    DECIDE_NO_BEARER,
    DECIDE_NOT_HOT,
    DECIDE_OK,
    DECIDE_UNKNOWN_HOST,
    SERVICE_API,
    SERVICE_API_KEYS,
    SERVICE_INVOCATION,
    Decision,
    HostClassifier,
    HotPath,
)
from gateway.asgi import ASGIApp, Receive, Scope, Send, header, send_response
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.problems import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    Unauthorized,
    error_body,
    problem_headers,
)
from gateway.runtime import Runtime
from gateway.services.apikeys import build_apikeys_app
from gateway.services.functions.app import build_api_app
from gateway.settings import Settings

log = logging.getLogger("gateway")

# Service labels served by this build; hosts of services that do not exist yet are unknown.
SERVICE_LABELS: dict[str, int] = {"api": SERVICE_API, "invocation": SERVICE_INVOCATION, "api-keys": SERVICE_API_KEYS}

HEALTH_BODY = orjson.dumps({"status": "UP"})
HEALTH_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(HEALTH_BODY)).encode())]


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self._services: dict[int, ASGIApp] = {}
        self._hot: HotPath | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("gateway not started")
        return self._runtime

    async def startup(self) -> None:
        runtime = await Runtime.start(self.settings)
        self._runtime = runtime
        self._services = {SERVICE_API_KEYS: build_apikeys_app(runtime), SERVICE_API: build_api_app(runtime)}
        classifier = HostClassifier(self.settings.domain, SERVICE_LABELS)
        invoke = runtime.authorities.any_of("invoke_function", APIKEY_PREFIX + "invoke_function")
        self._hot = HotPath(classifier, runtime.credentials, invoke)

    async def shutdown(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
            self._runtime = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/health":
            await send_response(send, 200, HEALTH_HEADERS, HEALTH_BODY)
            return
        hot = self._hot
        assert hot is not None, "gateway not started"
        host = header(scope, b"host") or b""
        method = scope["method"].encode()
        path = scope.get("raw_path") or scope["path"].encode()
        authorization = header(scope, b"authorization")
        decision = hot.decide(host, method, path, authorization)
        if decision.code == DECIDE_NOT_HOT:
            service = self._services.get(decision.service)
            if service is None:
                await _problem(send, NotFound("Unknown host"), scope["path"])
                return
            await service(scope, receive, send)
            return
        if decision.code == DECIDE_CACHE_MISS and decision.token is not None:
            try:
                await self.runtime.authenticator.authenticate(decision.token)
            except GatewayError as exc:
                await _problem(send, exc, scope["path"], invocation=True)
                return
            decision = hot.decide(host, method, path, authorization)
        await self._invocation(decision, scope, send)

    async def _invocation(self, decision: Decision, scope: Scope, send: Send) -> None:
        code = decision.code
        error: GatewayError
        if code == DECIDE_OK:
            # No function is registered in this build yet: every target is unknown.
            target = decision.function_id or decision.request_id
            error = NotFound(
                f"Function '{target}' not found" if decision.function_id else f"Request '{target}' not found"
            )
        elif code == DECIDE_UNKNOWN_HOST:
            await _problem(send, NotFound("Unknown host"), scope["path"])
            return
        elif code == DECIDE_NO_BEARER:
            error = Unauthorized("Header of type `authorization` was missing")
        elif code in (DECIDE_BAD_BEARER, DECIDE_CACHE_MISS):
            error = Unauthorized("Unauthorized access")
        elif code == DECIDE_FORBIDDEN:
            error = Forbidden("Missing required scope 'invoke_function'")
        elif code == DECIDE_BAD_ID:
            error = BadRequest("Invalid id in path: must be a UUID")
        else:
            error = GatewayError(f"unexpected hot-path decision {code}")
        await _problem(send, error, scope["path"], invocation=True)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _problem(send: Send, exc: GatewayError, instance: str, *, invocation: bool = False) -> None:
    body = error_body(exc, instance)
    extra: dict[str, Any] = dict(exc.headers)
    if invocation:
        extra.update({"NVCF-REQID": str(uuid.uuid4()), "NVCF-STATUS": "errored"})
    await send_response(send, exc.status, problem_headers(body, extra), body)


def build_app(settings: Settings) -> Gateway:
    return Gateway(settings)
