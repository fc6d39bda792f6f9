"""``Exchange`` over ASGI: the hot-path handlers under any ASGI server (and ``httpx.ASGITransport``).

The handlers write synchronously; here writes become ASGI messages queued for ``run``, which
sends them in order from the ASGI call's own task and keeps that call alive until the response
is complete (the answer may arrive from a callback long after the handler returned). A watcher
reads ``receive`` once the body is consumed and reports ``http.disconnect`` to ``on_close``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

from gateway.asgi import Message, Receive, Scope, Send
from gateway.edge.exchange import Exchange, Headers, HotRequest
from gateway.problems import BadRequest, PayloadTooLarge

Handler = Callable[[Exchange], Coroutine[Any, Any, None]]


def request_of(scope: Scope) -> HotRequest:
    request = HotRequest(
        scope["method"],
        scope["path"],
        scope.get("raw_path") or scope["path"].encode(),
        scope.get("query_string", b""),
        scope["headers"],
        scope.get("scheme", "http"),
    )
    request.client = scope.get("client")
    return request


class AsgiExchange(Exchange):
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.request = request_of(scope)
        self._receive = receive
        self._send = send
        self._pending: deque[Message] = deque()
        self._pending_bytes = 0
        self._wake: asyncio.Future[None] | None = None
        self._started = False
        self._complete = False
        self._gone = False
        self._body_read = False
        self._close_callback: Callable[[], None] | None = None
        self._writable: list[Callable[[], None]] = []
        self._head = scope["method"] == "HEAD"

    async def body(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                raise BadRequest("Client disconnected while sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                self._body_read = True
                return b"".join(parts)

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self.start(status, headers)
        self._push({"type": "http.response.body", "body": b"" if self._head else body})
        self._complete = True

    def start(self, status: int, headers: Headers) -> None:
        self._started = True
        self._push({"type": "http.response.start", "status": status, "headers": headers})

    def write(self, data: bytes) -> None:
        if data and not self._head:
            self._push({"type": "http.response.body", "body": data, "more_body": True})

    def end(self) -> None:
        self._push({"type": "http.response.body", "body": b"", "more_body": False})
        self._complete = True

    def abort(self) -> None:
        self._gone = True
        self._pending.clear()
        self._wakeup()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def closed(self) -> bool:
        return self._gone or self._complete

    @property
    def backlog(self) -> int:
        return self._pending_bytes

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._writable.append(callback)
        self._wakeup()

    def _push(self, message: Message) -> None:
        if self._gone:
            return
        self._pending.append(message)
        self._pending_bytes += len(message.get("body", b""))
        self._wakeup()

    def _wakeup(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self, handler: Handler) -> None:
        """Run ``handler``, then send what it (and later callbacks) write until the response ends."""
        watcher: asyncio.Task[None] | None = None
        try:
            await handler(self)
            if not self._complete or self._pending:
                watcher = asyncio.ensure_future(self._watch())
            await self._flush()
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._gone:
            while self._pending:
                message = self._pending.popleft()
                self._pending_bytes -= len(message.get("body", b""))
                await self._send(message)
            if self._writable and not self._pending:
                callbacks, self._writable = self._writable, []
                for callback in callbacks:
                    callback()
                continue
            if self._complete and not self._pending:
                return
            self._wake = loop.create_future()
            await self._wake
            self._wake = None

    async def _watch(self) -> None:
        """Report a disconnect while the answer is awaited (the body is read by then)."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                break
        if self._complete and not self._pending:
            return
        self._gone = True
        self._pending.clear()
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            with suppress(Exception):
                callback()
        self._wakeup()
