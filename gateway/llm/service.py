"""The LLM host's endpoints: ``GET /v1/models`` and the OpenAI ``POST`` paths, as invocations.

A ``POST`` is authenticated as pexec is (bearer, ``invoke_function``), its ``model``
(``<function-id>/<model-name>``) resolved and authorized as pexec resolves a function id (an
unknown or unreachable function is an unknown model: 404; an API key without the function: 403
as on pexec), admitted by the model's ``tokenRateLimit`` (which reserves the request's estimate
until its answer settles it, ``gateway.llm.budget``), rewritten (``model`` without the
function id; streams ask for usage), and queued as a direct invocation of the container's own
path. Its answer is relayed by ``gateway.llm.relay``. Every failure is an OpenAI error body.
``GET /v3/openapi`` describes the host (``gateway.llm.openapi``), without a credential.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import unquote

import orjson

from cext.hotpath import Principal
from gateway.auth.authority import principal_may_use_function
from gateway.edge.exchange import Exchange
from gateway.invocation.headers import poll_seconds
from gateway.invocation.service import InvocationService
from gateway.llm.budget import TokenBudget
from gateway.llm.catalog import LlmModel
from gateway.llm.errors import LlmError, from_problem, model_not_found
from gateway.llm.estimate import prompt_tokens, reservation
from gateway.llm.openapi import OPENAPI_PATH, openapi_body
from gateway.llm.relay import LlmExchange, renamer
from gateway.problems import GatewayError, NotFound

log = logging.getLogger("gateway.llm")

MODELS_PATH = "/v1/models"
# The OpenAI paths served as invocations; ``stream_options`` exists on the first two only.
INVOKED_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"})
_STREAM_OPTIONS_PATHS = frozenset({"/v1/chat/completions", "/v1/completions"})
# Until the container's answer starts (a whole completion, unless streamed): OpenAI's client waits 600 s.
DEFAULT_WINDOW_SECONDS = 600
# Request headers the container must not get: a compressed answer could not be metered.
_NOT_FORWARDED = frozenset({b"accept-encoding"})

Authenticate = Callable[[bytes | None], Awaitable[Principal]]


class LlmService:
    def __init__(self, invocations: InvocationService, authenticate: Authenticate, tokens: TokenBudget) -> None:
        self.invocations = invocations
        self.authenticate = authenticate
        self.tokens = tokens
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, exchange: Exchange) -> None:
        try:
            await self._handle(exchange)
        except LlmError as error:
            _send(exchange, error)
        except GatewayError as error:
            _send(exchange, from_problem(error))

    async def _handle(self, exchange: Exchange) -> None:
        request = exchange.request
        path = request.path.rstrip("/") or "/"
        if path == OPENAPI_PATH:  # public, as every host's /v3/openapi
            if request.method != "GET":
                raise _not_allowed(request.method, path, "GET")
            body = openapi_body()
            exchange.respond(200, [(b"content-type", b"application/json"), _length(body)], body)
            return
        if path == MODELS_PATH:
            if request.method != "GET":
                raise _not_allowed(request.method, path, "GET")
            principal = await self.authenticate(request.header(b"authorization"))
            body = orjson.dumps({"object": "list", "data": self.models(principal)})
            exchange.respond(200, [(b"content-type", b"application/json"), _length(body)], body)
            return
        if path.startswith(MODELS_PATH + "/"):  # models.retrieve: one model the caller may invoke
            if request.method != "GET":
                raise _not_allowed(request.method, path, "GET")
            principal = await self.authenticate(request.header(b"authorization"))
            model = unquote(path.removeprefix(MODELS_PATH + "/"))
            card = next((m for m in self.models(principal) if m["id"] == model), None)
            if card is None:
                raise model_not_found(model)
            body = orjson.dumps(card)
            exchange.respond(200, [(b"content-type", b"application/json"), _length(body)], body)
            return
        if path not in INVOKED_PATHS:
            raise LlmError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
        if request.method != "POST":
            raise _not_allowed(request.method, path, "POST")
        principal = await self.authenticate(request.header(b"authorization"))
        await self._invoke(principal, path, exchange)

    def models(self, principal: Principal) -> list[dict[str, Any]]:
        """The models of LLM functions the caller may invoke (an ACTIVE version it may use)."""
        listed: dict[str, dict[str, Any]] = {}
        for route in self.invocations.routes.all():
            for version in route.invocable_versions():
                if version.llm is None:
                    continue
                if not principal_may_use_function(principal, route, route.function_id, version.version_id):
                    continue
                for name in version.llm.models:
                    model_id = f"{route.function_id}/{name}"
                    listed.setdefault(
                        model_id, {"id": model_id, "object": "model", "created": 0, "owned_by": route.nca_id}
                    )
        return sorted(listed.values(), key=lambda m: str(m["id"]))

    async def _invoke(self, principal: Principal, path: str, exchange: Exchange) -> None:
        request = exchange.request
        window = poll_seconds(request.header(b"nvcf-poll-seconds"), DEFAULT_WINDOW_SECONDS)
        payload = _json_body(await exchange.body(self.invocations.max_body_bytes))
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise LlmError(400, "you must provide a model parameter", param="model")
        function_id, _, name = model.partition("/")
        if not name or not _is_uuid(function_id):
            raise model_not_found(model)
        try:
            route, version = self.invocations.target(principal, function_id.lower(), None)
        except NotFound:
            raise model_not_found(model) from None
        served = version.llm.models.get(name) if version.llm is not None else None
        if served is None:
            raise model_not_found(model)
        if not served.serves(path):
            raise LlmError(404, f"The model `{model}` does not serve {path}", code="unsupported_endpoint")
        reserved = reservation(path, payload) if served.token_rate_limit else 0
        admitted_at = await self._admit(route.function_id, served, reserved)
        strip = False
        if payload.get("stream") is True and path in _STREAM_OPTIONS_PATHS:
            options = payload.get("stream_options")
            options = options if isinstance(options, dict) else {}
            strip = options.get("include_usage") is not True
            payload["stream_options"] = {**options, "include_usage": True}
        payload["model"] = name
        request.headers = [h for h in request.headers if h[0] not in _NOT_FORWARDED and h[0] != b"content-type"]
        request.headers.append((b"content-type", b"application/json"))
        relay = LlmExchange(
            exchange,
            orjson.dumps(payload),
            self._charger(route.function_id, served, reserved, admitted_at),
            strip_usage_chunk=strip,
            prompt_tokens=prompt_tokens(path, payload) if served.token_rate_limit else 0,
            metered=bool(served.token_rate_limit),
            renamed=renamer(name, model),
        )
        try:
            await self.invocations.invoke_direct(principal, route, version, relay, path, window)
        except BaseException:  # never queued (queue full, no worker …): the reservation goes back
            relay.settle()
            raise

    async def _admit(self, function_id: str, model: LlmModel, reserve: int) -> float:
        """Admit by ``tokenRateLimit``, reserving ``reserve`` tokens; the clock of the admission."""
        now = time.time()
        rate = model.token_rate_limit
        if not rate:
            return now
        wait = await self.tokens.admit(f"{function_id}/{model.name}", rate, reserve, now)
        if wait:
            raise LlmError(
                429,
                f"Rate limit reached for model `{function_id}/{model.name}` on tokens: limit {rate}; "
                f"try again in {wait} s",
                type="tokens",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(wait)},
            )
        return now

    def _charger(self, function_id: str, model: LlmModel, reserved: int, at: float) -> Callable[[int | None], None]:
        """Settles the reservation with the tokens the answer used (``None``: unknown, it stands),
        in the windows of the admission."""
        rate = model.token_rate_limit
        if not rate:
            return _ignore
        key = f"{function_id}/{model.name}"

        def settle(tokens: int | None) -> None:
            if tokens is not None and tokens != reserved:
                self._spawn(self.tokens.charge(key, rate, tokens - reserved, at))

        return settle

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ignore(tokens: int | None) -> None:
    return None


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LlmError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(payload, dict):
        raise LlmError(400, "The request body must be a JSON object.")
    return payload


def _not_allowed(method: str, path: str, allowed: str) -> LlmError:
    return LlmError(405, f"Method {method} is not allowed on {path}", headers={"Allow": allowed})


def _length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


def _send(exchange: Exchange, error: LlmError) -> None:
    if exchange.started or exchange.closed:
        return
    exchange.respond(*error.response())


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36
