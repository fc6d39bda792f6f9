"""One control-plane request through ASGI, from the edge protocol to a Starlette app or proxy.

What uvicorn's request cycle does, kept small: the body is handed to ``receive`` as it arrives
(reading pauses while more than ``BODY_BUFFER_BYTES`` wait), ``send`` writes to the connection
and waits while the client's socket is full, and ``http.disconnect`` follows the response or
the client's departure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from gateway.asgi import Message, Receive, Scope, Send
from gateway.edge import wire
from gateway.problems import problem_body, problem_headers
from gateway.tracebacks import log_failure

if TYPE_CHECKING:
    from gateway.edge.protocol import EdgeProtocol

log = logging.getLogger("gateway.edge")

BODY_BUFFER_BYTES = 64 << 10


class ControlApp(Protocol):
    async def control(self, scope: Scope, receive: Receive, send: Send, decision: object) -> None: ...


class AsgiCycle:
    def __init__(self, connection: EdgeProtocol, scope: Scope, keep_alive: bool, decision: object) -> None:
        self.scope = scope
        self.keep_alive = keep_alive
        self.decision = decision
        self._connection = connection
        self._body: list[bytes] = []
        self.buffered = 0
        self.body_complete = False
        self._gone = False
        self._started = False
        self._complete = False
        self._chunked = False
        self._head = scope["method"] == "HEAD"
        self._sent_last = False
        self._event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # --- from the protocol -----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._body.append(data)
        self.buffered += len(data)
        self._event.set()

    def complete_body(self) -> None:
        self.body_complete = True
        self._event.set()

    def begin(self, app: ControlApp) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(app))

    def lost(self) -> None:
        self._gone = True
        self._event.set()

    @property
    def done(self) -> bool:
        return self._complete

    # --- ASGI ------------------------------------------------------------------------------

    async def _run(self, app: ControlApp) -> None:
        try:
            await app.control(self.scope, self.receive, self.send, self.decision)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                self._connection.abort()
                raise
            log_failure(log, "exception in the control plane", exc)
            if not self._started:
                body = problem_body(500, "Internal error", self.scope["path"])
                self.keep_alive = False
                await self.send({"type": "http.response.start", "status": 500, "headers": problem_headers(body)})
                await self.send({"type": "http.response.body", "body": body})
            else:
                self._connection.abort()
            return
        if not self._complete and not self._gone:
            log.error("control-plane app returned without completing its response")
            self._connection.abort()

    async def receive(self) -> Message:
        while not self._body and not self.body_complete and not self._gone:
            self._event.clear()
            self._connection.resume_reading()
            await self._event.wait()
        if self._gone or (self._complete and not self._body):
            return {"type": "http.disconnect"}
        if self.body_complete and not self._body and self._sent_last:
            # The body is consumed: the next event is the disconnect, once there is one.
            while not self._gone and not self._complete:
                self._event.clear()
                await self._event.wait()
            return {"type": "http.disconnect"}
        body = b"".join(self._body)
        self._body.clear()
        self.buffered = 0
        self._connection.resume_reading()
        more = not self.body_complete
        self._sent_last = not more
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(self, message: Message) -> None:
        connection = self._connection
        if connection.writing_paused and not self._gone:
            await connection.drain()
        if self._gone or self._complete:
            return
        kind = message["type"]
        if not self._started:
            if kind != "http.response.start":
                raise RuntimeError(f"expected http.response.start, got {kind}")
            self._started = True
            if connection.http_counts is not None:
                connection.http_counts.count(self.decision, self.scope["method"], message["status"])
            if not self.body_complete:
                # The app answers before the body is read (413, 401...): close after the answer.
                self.keep_alive = False
            head, self._chunked = wire.response_head(
                message["status"],
                list(message.get("headers", [])),
                connection.default_headers,
                keep_alive=self.keep_alive,
                head_request=self._head,
            )
            connection.write(head)
            return
        if kind != "http.response.body":
            raise RuntimeError(f"expected http.response.body, got {kind}")
        body: bytes = message.get("body", b"")
        if body and not self._head:
            connection.write(wire.chunk(body) if self._chunked else body)
        if not message.get("more_body", False):
            if self._chunked:
                connection.write(wire.LAST_CHUNK)
            self._complete = True
            self._event.set()
            connection.response_done(self)


def scope_of(
    method: str,
    path: str,
    raw_path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: Any,
    server: Any,
    state: dict[str, Any],
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": server,
        "client": client,
        "scheme": scheme,
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "state": state.copy(),
    }
