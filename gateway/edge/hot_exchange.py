"""``Exchange`` straight on the connection: a hot-path request and its response, no ASGI.

The body is collected by the protocol before the handler runs (bounded by the body limit and
the process's byte budget, both checked against the declared length first); writes go to the
transport as they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from gateway.edge import wire
from gateway.edge.exchange import Exchange, Headers, HotRequest
from gateway.problems import BadRequest, PayloadTooLarge

if TYPE_CHECKING:
    from gateway.edge.protocol import EdgeProtocol

_COPY_LIMIT = 64 << 10

Handler = Callable[[Exchange], Coroutine[Any, Any, None]]


class HotExchange(Exchange):
    __slots__ = (
        "_chunked",
        "_close_callback",
        "_complete",
        "_connection",
        "_gone",
        "_head",
        "_started",
        "body_complete",
        "handler",
        "keep_alive",
        "parts",
        "request",
        "size",
    )

    def __init__(self, connection: EdgeProtocol, request: HotRequest, handler: Handler, keep_alive: bool) -> None:
        self.request = request
        self.handler = handler
        self.keep_alive = keep_alive
        self._connection = connection
        self._head = request.method == "HEAD"
        self.parts: list[bytes] = []
        self.size = 0
        self.body_complete = False
        self._started = False
        self._complete = False
        self._chunked = False
        self._gone = False
        self._close_callback: Callable[[], None] | None = None

    # --- request ---------------------------------------------------------------------------

    async def body(self, limit: int) -> bytes:
        if self._gone:
            raise BadRequest("Client disconnected while sending the body")
        if self.size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        parts = self.parts
        self.parts = []
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # --- response --------------------------------------------------------------------------

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        if self._gone or self._started:
            return
        self._started = True
        connection = self._connection
        if connection.http_counts is not None:
            connection.http_counts.count(self.request.decision, self.request.method, status)
        head, _ = wire.response_head(
            status, headers, connection.default_headers, keep_alive=self.keep_alive, head_request=self._head
        )
        if self._head or not body:
            connection.write(head)
        elif len(body) > _COPY_LIMIT:  # a large body is not copied to join it to its head
            connection.write(head)
            connection.write(body)
        else:  # one send for the common small answer
            connection.write(head + body)
        self._finish()

    def start(self, status: int, headers: Headers) -> None:
        if self._gone or self._started:
            return
        self._started = True
        connection = self._connection
        if connection.http_counts is not None:
            connection.http_counts.count(self.request.decision, self.request.method, status)
        head, self._chunked = wire.response_head(
            status, headers, connection.default_headers, keep_alive=self.keep_alive, head_request=self._head
        )
        connection.write(head)

    def write(self, data: bytes) -> None:
        if self._gone or self._complete or not data or self._head:
            return
        self._connection.write(wire.chunk(data) if self._chunked else data)

    def end(self) -> None:
        if self._gone or self._complete:
            return
        if self._chunked:
            self._connection.write(wire.LAST_CHUNK)
        self._finish()

    def abort(self) -> None:
        if not self._complete:
            self._connection.abort()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def closed(self) -> bool:
        return self._gone or self._complete

    @property
    def backlog(self) -> int:
        return self._connection.backlog

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self._close_callback = callback

    def on_writable(self, callback: Callable[[], None]) -> None:
        self._connection.on_writable(callback)

    # --- connection events -----------------------------------------------------------------

    def _finish(self) -> None:
        self._complete = True
        self._close_callback = None
        self._connection.response_done(self)

    def lost(self) -> None:
        """The client disconnected."""
        if self._complete or self._gone:
            return
        self._gone = True
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()
