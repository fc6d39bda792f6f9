"""The access log (``--access-log``): one line per request on the ``gateway.access`` logger.

Fields: ``method``, ``service`` (the host's service: api, invocation, function, api-keys, tasks,
sis, nico, health), ``path`` (a template: ids are ``{id}``, the query is never logged: result
and asset URLs carry their signature there), ``status``, ``duration_ms`` (from the request's
head to its last response byte), and when known the ``request_id`` (NVCF-REQID), ``function_id``,
``version_id`` and ``account``. A client that leaves before its answer is status 499.

Off (the default), nothing here runs: the gateway wraps handlers only when it is on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from cext.hotpath import Decision
from gateway.asgi import Message, Scope, Send
from gateway.edge.exchange import Exchange, Headers, HotRequest
from gateway.edge.hot_exchange import Handler
from invoker.invocations import InvocationRequest
from invoker.logs import invocation_fields

log = logging.getLogger("gateway.access")

CLIENT_GONE = 499

SERVICE_NAMES = ("unknown", "api", "invocation", "function", "api-keys", "tasks", "sis", "nico")

_ID_SEGMENT = re.compile(r"(?<=/)(?:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}|[0-9]{3,})(?=/|$)")
_MAX_PATH = 200


def path_template(path: str) -> str:
    """``/v2/nvcf/pexec/functions/<uuid>`` → ``/v2/nvcf/pexec/functions/{id}``."""
    return _ID_SEGMENT.sub("{id}", path)[:_MAX_PATH]


def _service(decision: object, path: str) -> str:
    if isinstance(decision, Decision):
        service = decision.service
        return SERVICE_NAMES[service] if 0 <= service < len(SERVICE_NAMES) else "unknown"
    return "health" if path == "/health" else "unknown"


class AccessLine:
    """One request's line, written once when its answer is complete (or the client is gone)."""

    __slots__ = ("decision", "fields", "method", "path", "started", "status", "written")

    def __init__(self, method: str, path: str, decision: object) -> None:
        self.started = time.perf_counter()
        self.method = method
        self.path = path
        self.decision = decision
        self.status = 0
        self.written = False
        self.fields: dict[str, str] = {}

    def response_headers(self, status: int, headers: Headers) -> None:
        self.status = status
        for name, value in headers:
            if name.lower() == b"nvcf-reqid":
                self.fields["request_id"] = value.decode("latin-1")
                break

    def write(self, status: int | None = None) -> None:
        if self.written:
            return
        self.written = True
        if status is not None:
            self.status = status
        elapsed = round((time.perf_counter() - self.started) * 1000, 3)
        service = _service(self.decision, self.path)
        template = path_template(self.path)
        extra: dict[str, Any] = {
            "method": self.method,
            "service": service,
            "path": template,
            "status": self.status,
            "duration_ms": elapsed,
        }
        fields = self.fields
        decision = self.decision
        if isinstance(decision, Decision):  # what the head said, where the answer did not say more
            if decision.request_id:
                fields.setdefault("request_id", decision.request_id)
            if decision.function_id:
                fields.setdefault("function_id", decision.function_id)
            if decision.version_id:
                fields.setdefault("version_id", decision.version_id)
            if decision.principal is not None and decision.principal.nca_id:
                fields.setdefault("account", decision.principal.nca_id)
        extra.update(fields)
        log.info("%s %s %s %d %.1fms", self.method, service, template, self.status, elapsed, extra=extra)


class LoggedExchange(Exchange):
    """An exchange that writes its access line when its response is complete."""

    __slots__ = ("_close_callback", "inner", "line", "request")

    def __init__(self, inner: Exchange, line: AccessLine) -> None:
        self.inner = inner
        self.request = inner.request
        self.line = line
        self._close_callback: Callable[[], None] | None = None
        inner.on_close(self._lost)

    async def body(self, limit: int) -> bytes:
        return await self.inner.body(limit)

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        started = self.inner.started or self.inner.closed
        self.inner.respond(status, headers, body)
        if not started:
            self.line.response_headers(status, headers)
            self.line.write()

    def start(self, status: int, headers: Headers) -> None:
        if not (self.inner.started or self.inner.closed):
            self.line.response_headers(status, headers)
        self.inner.start(status, headers)

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def end(self) -> None:
        self.inner.end()
        self.line.write()

    def abort(self) -> None:
        self.inner.abort()
        self.line.write()

    @property
    def started(self) -> bool:
        return self.inner.started

    @property
    def closed(self) -> bool:
        return self.inner.closed

    @property
    def backlog(self) -> int:
        return self.inner.backlog

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def on_writable(self, callback: Callable[[], None]) -> None:
        self.inner.on_writable(callback)

    def _lost(self) -> None:
        self.line.write(CLIENT_GONE)
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()


def annotate(exchange: Exchange, request: InvocationRequest) -> None:
    """The invocation's ids (the version chosen, the caller's account) on its request's line."""
    if isinstance(exchange, LoggedExchange):
        exchange.line.fields.update(invocation_fields(request))


def logged_handler(request: HotRequest, handler: Handler) -> Handler:
    """``handler`` answering through a ``LoggedExchange``."""
    line = AccessLine(request.method, request.path, request.decision)

    async def logged(exchange: Exchange) -> None:
        await handler(LoggedExchange(exchange, line))

    return logged


class LoggedSend:
    """The ASGI ``send`` of a control-plane request, writing its access line."""

    __slots__ = ("line", "send")

    def __init__(self, scope: Scope, decision: object, send: Send) -> None:
        self.line = AccessLine(scope["method"], scope["path"], decision)
        self.send = send

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.line.response_headers(message["status"], list(message.get("headers", ())))
        await self.send(message)
        if kind == "http.response.body" and not message.get("more_body", False):
            self.line.write()

    def finish(self) -> None:
        """The app returned (or failed): a request it never answered is logged as such."""
        self.line.write(None if self.line.status else CLIENT_GONE)
