"""The HTTP edge: an ``asyncio.Protocol`` on uvloop + httptools, hosted by uvicorn's server.

uvicorn (``http=EdgeProtocol``) keeps what it does well: sockets (SO_REUSEPORT children too),
lifespan, signals, graceful shutdown. Each connection is this protocol: httptools parses, the
head goes to ``Gateway.hot_handler``; a hot request (pexec, status, direct, downloads, /health)
is answered straight through a ``HotExchange`` (one task runs the handler until the invocation
is queued; its answer is written by callbacks), everything else goes to the control plane
through ASGI (``AsgiCycle``).

The edge holds: a head must arrive within the header timeout (slowloris), an idle keep-alive
connection closes after its timeout, heads over the byte or count limit get 431, a declared
body over the limit 413 and one over the process's byte budget 429 before a byte of it is
read, past the connection cap only ``/health`` is answered, and every parser error is answered
as problem+json. Responses to pipelined requests go out in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast
from urllib.parse import unquote

import httptools

from gateway.asgi import Receive, Scope, Send
from gateway.edge import wire
from gateway.edge.asgi_cycle import BODY_BUFFER_BYTES, AsgiCycle, scope_of
from gateway.edge.budget import ByteBudget
from gateway.edge.exchange import Exchange, HotRequest
from gateway.edge.hot_exchange import Handler, HotExchange
from gateway.metrics.http import HttpCounts
from gateway.problems import GatewayError, error_body, problem_body, problem_headers
from gateway.settings import Settings
from gateway.tracebacks import log_failure

log = logging.getLogger("gateway.edge")

# Past this many bytes waiting in the socket, writers pause (``drain``, ``on_writable``).
WRITE_HIGH_WATER = 256 << 10
WRITE_LOW_WATER = 64 << 10

_IDLE, _HEAD, _BODY, _ANSWER = range(4)


class EdgeApp(Protocol):
    """What the edge needs of the gateway (``gateway.app.Gateway``)."""

    settings: Settings
    budget: ByteBudget

    def hot_handler(self, request: HotRequest) -> Handler | None: ...

    async def control(self, scope: Scope, receive: Receive, send: Send, decision: object) -> None: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class _Refused(Exception):
    """The request cannot be read further: answer ``status`` and close."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


class EdgeProtocol(asyncio.Protocol):
    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.app: EdgeApp = config.app
        settings = self.app.settings
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.app_state = app_state
        self.header_timeout = float(settings.header_timeout_seconds)
        self.keepalive_timeout = float(settings.keepalive_timeout_seconds)
        self.max_header_bytes = settings.max_header_bytes
        self.max_header_count = settings.max_header_count
        self.max_connections = settings.max_connections
        self.max_body = settings.max_invocation_body_bytes
        self.budget = self.app.budget
        # Answers counted for the metrics (gateway.metrics.http), None when they are off.
        self.http_counts: HttpCounts | None = getattr(self.app, "http_counts", None)
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.scheme = "http"
        self.client: Any = None
        self.server: Any = None
        self.over_cap = False
        self.writing_paused = False
        self._writable: list[Callable[[], None]] = []
        self._drained: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._closing = False
        # The request being parsed, and those parsed whose answers are due, in order.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._parsing: HotExchange | AsgiCycle | None = None
        self._discarding = False
        self._pipeline: deque[HotExchange | AsgiCycle] = deque()
        # One timer per connection; the deadline moves, the timer re-arms only when it fires.
        self._phase = _IDLE
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = self.server_state.default_headers
        return headers

    # --- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's TCP transports are not subclasses
        self.transport = transport
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        connections = self.server_state.connections
        self.over_cap = len(connections) >= self.max_connections
        connections.add(self)
        self.client = transport.get_extra_info("peername")
        self.server = transport.get_extra_info("sockname")
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        self._set_deadline(_IDLE, self.keepalive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._closing = True
        # The parser holds our callbacks: without this the pair is a cycle per connection, freed
        # only by the cycle collector.
        self.parser = _DETACHED_PARSER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        parsing = self._parsing
        self._parsing = None
        pipeline = list(self._pipeline)
        self._pipeline.clear()
        if parsing is not None and parsing not in pipeline:
            pipeline.append(parsing)
        for item in pipeline:
            self._release(item)
            item.lost()
        self._wake_writers()

    def shutdown(self) -> None:
        """Graceful shutdown (uvicorn): close when idle, else after the answer in progress."""
        if not self._pipeline and self._parsing is None:
            self._close()
        else:
            for item in self._pipeline:
                item.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._phase == _IDLE:
            self._set_deadline(_HEAD, self.header_timeout)
        elif self._phase == _BODY:
            self._set_deadline(_BODY, self.header_timeout)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._parsing is not None:  # upgrades are not served: an upgrade with a body
                self._refuse(400, "Connection upgrades are not supported")
        except httptools.HttpParserCallbackError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self._refuse(refused.status, refused.detail, refused.headers)
            else:
                log_failure(log, "edge parser callback failed", refused or exc)
                self._refuse(500, "Internal error")
        except httptools.HttpParserError as exc:
            self._refuse(400, f"Malformed HTTP request: {_parser_reason(exc)}")

    def eof_received(self) -> bool | None:
        return None

    # --- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._discarding = False
        if self._phase != _HEAD:
            self._set_deadline(_HEAD, self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self.max_header_bytes:
            raise _Refused(431, f"Request head exceeds {self.max_header_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        headers = self._headers
        if self._head_bytes > self.max_header_bytes:
            raise _Refused(431, f"Request head exceeds {self.max_header_bytes} bytes")
        if len(headers) >= self.max_header_count:
            raise _Refused(431, f"Request has more than {self.max_header_count} headers")
        headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method().decode("ascii")
        url = httptools.parse_url(self._url)
        raw_path: bytes = url.path
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        request = HotRequest(method, path, raw_path, url.query or b"", self._headers, self.scheme)
        request.client = self.client
        keep_alive = parser.should_keep_alive() and not self._closing
        if self.over_cap and path != "/health":
            raise _Refused(503, "Too many connections to this gateway process; retry later", {"Retry-After": "1"})
        self._phase = _BODY
        handler = self.app.hot_handler(request)
        item: HotExchange | AsgiCycle
        if handler is not None:
            declared = _declared_length(request)
            if declared > self.max_body:
                raise _Refused(413, f"Request body exceeds the limit of {self.max_body} bytes")
            if declared > 0:
                if not self.budget.reserve(declared):
                    error = _over_budget()
                    raise _Refused(error.status, error.detail, error.headers)
                request.reserved = declared
            item = HotExchange(self, request, handler, keep_alive)
        else:
            scope = scope_of(
                method,
                path,
                raw_path,
                url.query or b"",
                self._headers,
                self.scheme,
                self.client,
                self.server,
                self.app_state,
            )
            item = AsgiCycle(self, scope, keep_alive, request.decision)
        if request.header(b"expect") == b"100-continue":
            self.write(wire.CONTINUE)
        self._parsing = item
        self._pipeline.append(item)
        if isinstance(item, AsgiCycle) and len(self._pipeline) == 1:
            item.begin(self.app)

    def on_body(self, body: bytes) -> None:
        item = self._parsing
        if item is None:
            return
        if isinstance(item, HotExchange):
            size = item.size + len(body)
            if size > self.max_body:
                raise _Refused(413, f"Request body exceeds the limit of {self.max_body} bytes")
            grow = size - item.request.reserved
            if grow > 0:  # chunked, or more than declared (httptools stops at the declared length)
                if not self.budget.reserve(grow):
                    error = _over_budget()
                    raise _Refused(error.status, error.detail, error.headers)
                item.request.reserved += grow
            item.size = size
            item.parts.append(body)
            return
        item.feed(body)
        if item.buffered > BODY_BUFFER_BYTES:
            self._pause_reading()

    def on_message_complete(self) -> None:
        item = self._parsing
        self._parsing = None
        self._phase = _ANSWER
        self._deadline = 0.0
        if item is None:
            return
        if isinstance(item, HotExchange):
            item.body_complete = True
            if self._pipeline and self._pipeline[0] is item:
                self._start(item)
        else:
            item.complete_body()
        if len(self._pipeline) > 1:
            self._pause_reading()  # pipelined: read on once the answers caught up

    # --- answering -------------------------------------------------------------------------

    def _start(self, exchange: HotExchange) -> None:
        """Run the handler until the invocation is queued (its answer arrives by callbacks).

        When the gateway marked the request ``eager``, the handler's first step runs right here
        and usually finishes (no task at all); otherwise, or once it really waits, it runs in a
        task: code that asks for the current task (``asyncio.timeout`` in redis-py) needs one."""
        self.server_state.total_requests += 1
        if exchange.request.eager:
            coro = exchange.handler(exchange)
            try:
                yielded = coro.send(None)
            except StopIteration:
                self._handled(exchange)
                return
            except BaseException as exc:
                self._failed(exchange, exc)
                return
            self._track(self.loop.create_task(self._resume(exchange, coro, yielded)))
            return
        self._track(self.loop.create_task(self._run(exchange)))

    def _track(self, task: asyncio.Task[None]) -> None:
        tasks = self.server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _resume(self, exchange: HotExchange, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        """Go on with a handler whose first step ran in place and then waited."""
        try:
            while True:
                suspended = _Suspended(yielded)
                await suspended
                if suspended.thrown is not None and yielded is None:
                    yielded = coro.throw(suspended.thrown)
                else:  # the awaited future's own result() raises whatever it ended with
                    yielded = coro.send(None)
        except StopIteration:
            self._handled(exchange)
        except BaseException as exc:
            self._failed(exchange, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _run(self, exchange: HotExchange) -> None:
        try:
            await exchange.handler(exchange)
        except BaseException as exc:
            self._failed(exchange, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            self._handled(exchange)

    def _handled(self, exchange: HotExchange) -> None:
        self._release(exchange)

    def _failed(self, exchange: HotExchange, exc: BaseException) -> None:
        self._release(exchange)
        if isinstance(exc, GatewayError):
            error = exc
        else:
            if not isinstance(exc, asyncio.CancelledError):
                log_failure(log, "exception on the hot path", exc)
            error = GatewayError("Internal error")
        if not exchange.started and not exchange.closed:
            body = error_body(error, exchange.request.path)
            exchange.respond(error.status, problem_headers(body, error.headers), body)
        elif not exchange.closed:
            self.abort()

    def _release(self, item: HotExchange | AsgiCycle) -> None:
        if isinstance(item, HotExchange) and item.request.reserved:
            self.budget.release(item.request.reserved)
            item.request.reserved = 0

    def response_done(self, item: HotExchange | AsgiCycle) -> None:
        pipeline = self._pipeline
        if pipeline and pipeline[0] is item:
            pipeline.popleft()
        if self._closing:
            return
        if not item.keep_alive or not item.body_complete:
            self._close()
            return
        if pipeline:
            following = pipeline[0]
            if isinstance(following, HotExchange):
                if following.body_complete:
                    self._start(following)
            else:
                following.begin(self.app)
            if len(pipeline) <= 1:
                self.resume_reading()
            return
        if self._parsing is None:
            self._set_deadline(_IDLE, self.keepalive_timeout)
        self.resume_reading()

    # --- writing and flow control ----------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    @property
    def backlog(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None and not self._closing else 0

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writers()

    def _wake_writers(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None
        if self._writable:
            callbacks, self._writable = self._writable, []
            for callback in callbacks:
                callback()

    def on_writable(self, callback: Callable[[], None]) -> None:
        if self.writing_paused and not self._closing:
            if callback not in self._writable:
                self._writable.append(callback)
        else:
            self.loop.call_soon(callback)

    async def drain(self) -> None:
        if not self.writing_paused or self._closing:
            return
        if self._drained is None:
            self._drained = self.loop.create_future()
        await self._drained

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None and not self._closing:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self._closing:
            self._reading_paused = False
            self.transport.resume_reading()

    # --- ends ------------------------------------------------------------------------------

    def _refuse(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        """Answer the edge's own problem (when nothing else is answering) and close."""
        if self._closing:
            return
        busy = [i for i in self._pipeline if i is not self._parsing]
        if self._parsing is not None:
            self._release(self._parsing)
            if self._parsing in self._pipeline:
                self._pipeline.remove(self._parsing)
            self._parsing = None
        if not busy:
            if self.http_counts is not None:
                self.http_counts.count(None, "unknown", status)
            self.write(wire.edge_problem(status, detail, "/", headers))
            self._close()
        else:  # an answer is still due on this connection: let it finish, then close
            for item in busy:
                item.keep_alive = False
            self._pause_reading()

    def _close(self) -> None:
        if self.transport is not None and not self._closing:
            self._closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self._closing = True
            self.transport.abort()

    def _set_deadline(self, phase: int, seconds: float) -> None:
        self._phase = phase
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._timer = None
        deadline = self._deadline
        if not deadline or self._closing:
            return
        if self.loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._deadline_passed)
            return
        if self._phase == _IDLE:
            self._close()
        elif self._phase == _HEAD:
            self._refuse(408, "The request head did not arrive in time")
        elif self._phase == _BODY:
            self._refuse(408, "The request body stalled")


class _NoCallbacks:
    pass


_DETACHED_PARSER = httptools.HttpRequestParser(_NoCallbacks())


class _Suspended:
    """Re-yield to the task what a handler stepped in place yielded to the loop."""

    __slots__ = ("thrown", "yielded")

    def __init__(self, yielded: Any) -> None:
        self.yielded = yielded
        self.thrown: BaseException | None = None

    def __await__(self) -> Any:
        try:
            yield self.yielded
        except BaseException as exc:  # the task's cancellation (or the awaited future's failure)
            self.thrown = exc


def _declared_length(request: HotRequest) -> int:
    raw = request.header(b"content-length")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise _Refused(400, "Invalid Content-Length header")
    return int(raw)


def _over_budget() -> GatewayError:
    from gateway.edge.budget import over_budget

    return over_budget()


def _parser_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


def edge_problem_body(status: int, detail: str) -> bytes:
    return problem_body(status, detail, "/")


__all__ = ["EdgeProtocol", "Exchange"]
