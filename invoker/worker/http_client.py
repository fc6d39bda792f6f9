"""A lean asyncio HTTP/1.1 client for one origin (the inference container), on httptools.

The worker calls the same container thousands of times a second, so this client does only what
that needs: a keep-alive pool of at most ``max_connections`` connections to one host and port, a
request written with one ``write`` (or ``writelines`` for large bodies), a response parsed by
httptools' callbacks straight into a small per-connection state, and a body read as an async
iterator of the chunks as they arrive (no buffering beyond a high-water mark; reading pauses
above it).

Bodies may be framed by ``Content-Length``, chunked, or (without either) end at connection close.
A connection is reused only when its response was read to the end, the server did not ask to
close it, and the request was not HEAD. A request sent on a reused connection that the server had
already closed (nothing received back) is retried once on a fresh connection.

Use a response as an async context manager (or call ``close()``/``abort()``): leaving it before
the body is read to the end aborts the connection, which is how the worker cancels a container
call — the container sees the disconnect.

Header names and values are ``str``; they are sent as latin-1 (UTF-8 when a value does not fit)
and received as latin-1, so bytes survive a round trip.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Iterable
from types import TracebackType
from typing import cast

import httptools

__all__ = [
    "ConnectError",
    "ConnectionClosed",
    "HttpClient",
    "HttpClientError",
    "ProtocolError",
    "Response",
]

_HIGH_WATER = 1 << 20  # pause reading the socket when this much body is buffered and unread
_LOW_WATER = 1 << 18
_JOIN_LIMIT = 1 << 16  # bodies up to this size are sent in the same write as the head


class HttpClientError(Exception):
    """Root of the client's errors."""


class ConnectError(HttpClientError, ConnectionError):
    """The container could not be reached (refused, unreachable, connect timeout)."""


class ConnectionClosed(HttpClientError, ConnectionError):
    """The connection closed before the response was complete."""


class ProtocolError(HttpClientError):
    """The container sent bytes that are not a valid HTTP/1.1 response."""


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def build_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The request line and header block, ready to write (CR, LF and NUL are refused everywhere)."""
    if not target.startswith("/") or " " in target or "\t" in target:
        raise ValueError(f"bad request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append("\r\n")
    head = "".join(lines)
    # Every line ends with the only CR LF it may hold: one scan each instead of one per field.
    if head.count("\n") != len(lines) or head.count("\r") != len(lines) or "\x00" in head:
        raise ValueError("a request line or header contains a line break or NUL")
    return _encode(head)


class _Connection(asyncio.Protocol):
    """One TCP connection and the state of the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        # Per-response state.
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.received = False
        self.error: Exception | None = None
        self.server_keep_alive = False
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self._interim = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.complete:
            # Bytes after a finished response (or after a HEAD answer): never reuse this connection.
            self.closed = True
            self._close_transport()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response from the container: {exc}"))
            self._close_transport()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and self._ends_at_close():
                self.complete = True
            else:
                detail = f": {exc}" if exc else ""
                self.error = ConnectionClosed(f"the container closed the connection{detail}")
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue / 103 Early Hints: wait for the final response
            return
        self.status = status
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self.headers = []
            return
        self.complete = True
        self.server_keep_alive = self._parser.should_keep_alive()  # reset by the parser after this call
        self._wake()

    # -- used by the pool and the response ---------------------------------------------------

    def send(self, head: bytes, body: bytes | memoryview) -> None:
        assert self.transport is not None
        if not body:
            self.transport.write(head)
        elif len(body) <= _JOIN_LIMIT:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))

    def reset(self) -> None:
        self.status = 0
        self.headers = []
        self.headers_done = False
        self.complete = False
        self.received = False
        self.error = None
        self.server_keep_alive = False
        self.chunks.clear()
        self.buffered = 0

    async def wait(self) -> None:
        """Wait until the parser reports progress (headers, body, end) or the connection fails."""
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def take(self) -> bytes:
        """Everything buffered so far, as one bytes object (no copy when it is a single chunk)."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def keep_alive(self) -> bool:
        return self.complete and not self.closed and self.error is None and self.server_keep_alive

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ends_at_close(self) -> bool:
        """A body without Content-Length and not chunked is delimited by the connection closing."""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True


class Response:
    """A response whose body is still on the wire: iterate it (``async for chunk in response``)."""

    __slots__ = ("_client", "_conn", "_done", "_head_only", "headers", "status")

    def __init__(self, client: HttpClient, conn: _Connection, head_only: bool) -> None:
        self._client = client
        self._conn = conn
        self._head_only = head_only
        self._done = False
        self.status = conn.status
        self.headers = conn.headers

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (``name`` in lower case), or None."""
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def complete(self) -> bool:
        """True once the whole body has arrived (it may still be buffered, unread)."""
        return self._head_only or self._conn.complete

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        data = await self.receive()
        if data is None:
            raise StopAsyncIteration
        return data

    async def receive(self) -> bytes | None:
        """The next piece of body (everything buffered so far), or None at the end of the body."""
        conn = self._conn
        while True:
            if self._done:
                return None
            if conn.chunks:
                return conn.take()
            if self._head_only or conn.complete:
                self.close()
                return None
            if conn.error is not None:
                error = conn.error
                self.abort()
                raise error
            await conn.wait()

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; with ``limit``, stop (and abort the connection) once more than that arrived."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self:
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                self.abort()
                break
        return b"".join(parts)

    def close(self) -> None:
        """Give the connection back to the pool if the body was read to the end, else abort it."""
        if self._done:
            return
        self._done = True
        conn = self._conn
        if self._head_only or not (conn.complete and not conn.chunks):
            conn.abort()
        self._client._release(conn, reusable=not self._head_only and conn.keep_alive())

    def abort(self) -> None:
        """Close the connection now (the container sees the client disconnect)."""
        if self._done:
            return
        self._done = True
        self._conn.abort()
        self._client._release(self._conn, reusable=False)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


async def _write_stream(conn: _Connection, stream: AsyncIterable[bytes]) -> None:
    async for piece in stream:
        if conn.error is not None or conn.closed or conn.transport is None:
            raise conn.error or ConnectionClosed("the container closed the connection while the body was sent")
        if piece:
            conn.transport.write(piece)


class HttpClient:
    """A keep-alive connection pool to one ``host:port`` with at most ``max_connections`` in use."""

    def __init__(self, host: str, port: int, *, max_connections: int = 64, connect_timeout: float = 10.0) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | memoryview = b"",
        *,
        stream: AsyncIterable[bytes] | None = None,
    ) -> Response:
        """Send a request and return once the response headers arrived (the body is read from the result).

        ``headers`` are sent as given: the caller adds ``Host`` and ``Content-Length`` (or
        ``Transfer-Encoding``). ``stream``: body pieces written as they come, after ``body`` and
        already framed by the caller; such a request is not retried on a stale connection.
        """
        if self._closed:
            raise HttpClientError("the client is closed")
        head = build_head(method, target, headers)
        head_only = method == "HEAD"
        await self._slots.acquire()
        conn: _Connection | None = None
        try:
            for attempt in (0, 1):
                conn = await self._acquire()
                conn.send(head, body)
                if stream is not None:
                    await _write_stream(conn, stream)
                try:
                    while not conn.headers_done:
                        if conn.error is not None:
                            raise conn.error
                        await conn.wait()
                except ConnectionClosed:
                    if attempt == 0 and conn.reused and not conn.received and stream is None:
                        conn.abort()
                        continue  # the server had closed this idle connection: retry once on a new one
                    raise
                return Response(self, conn, head_only)
            raise AssertionError("unreachable")
        except BaseException:
            if conn is not None:
                conn.abort()
            self._slots.release()
            raise

    async def _acquire(self) -> _Connection:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                conn.reset()
                return conn
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        except TimeoutError as exc:
            raise ConnectError(f"timed out connecting to {self.host}:{self.port}") from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from exc
        return protocol

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and not self._closed and not conn.closed:
            self._idle.append(conn)
        elif not conn.closed:
            conn.abort()
        self._slots.release()

    @property
    def idle_connections(self) -> int:
        return sum(1 for conn in self._idle if not conn.closed)

    def close(self) -> None:
        """Close the idle connections; connections in use close when their responses are released."""
        self._closed = True
        while self._idle:
            self._idle.pop().abort()
