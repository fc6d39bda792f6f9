"""The hot path's request/response interface: what pexec, status, direct invocation, result
downloads and SSE relays see of HTTP, instead of ASGI scope/receive/send.

Two servers implement it: ``gateway.edge.protocol`` (the uvloop + httptools protocol, which
calls the handlers straight from its parser callbacks) and ``gateway.edge.asgi_exchange`` (for
any ASGI server, and the in-process tests driving the app through ``httpx.ASGITransport``).

Writes are synchronous, so an invocation's answer can be written from the callback that
delivers it (no task waiting for it); ``backlog`` and ``on_writable`` let a streamed answer
follow a slow reader instead of buffering without bound.
"""

from __future__ import annotations

from collections.abc import Callable

Headers = list[tuple[bytes, bytes]]


class HotRequest:
    """One request's head. Header names are lower-case bytes, values as sent."""

    __slots__ = (
        "client",
        "decision",
        "eager",
        "headers",
        "method",
        "path",
        "query",
        "raw_path",
        "reserved",
        "scheme",
    )

    def __init__(
        self, method: str, path: str, raw_path: bytes, query: bytes, headers: Headers, scheme: str = "http"
    ) -> None:
        self.method = method
        self.path = path
        self.raw_path = raw_path
        self.query = query
        self.headers = headers
        self.scheme = scheme
        # The hot-path decision the server layer made from the head (``HotPath.decide``).
        self.decision: object = None
        # Bytes of the body counted against the process's byte budget; whoever keeps the body
        # (a queued invocation) takes them over and releases them when done with it.
        self.reserved = 0
        # The handler is known to need no task of its own until it first waits (nothing in it
        # asks for the current task): the server layer may run its first step in place.
        self.eager = False
        # The peer's (host, port), when the server layer knows it (X-Forwarded-For of the proxy).
        self.client: tuple[str, int] | None = None

    def header(self, name: bytes) -> bytes | None:
        """First value of a header (``name`` lower-case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Exchange:
    """A request being answered: its body in, one response out."""

    request: HotRequest

    async def body(self, limit: int) -> bytes:
        """The whole request body; ``PayloadTooLarge`` past ``limit``, ``BadRequest`` if the client left."""
        raise NotImplementedError

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """A complete response (``headers`` carry its content-length)."""
        raise NotImplementedError

    def start(self, status: int, headers: Headers) -> None:
        """Start a streamed response (chunked unless ``headers`` carry a content-length)."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def end(self) -> None:
        """End a streamed response."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the client's connection (a response cut short cannot be ended cleanly)."""
        raise NotImplementedError

    @property
    def started(self) -> bool:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """The client is gone (or the response is complete and the exchange is over)."""
        raise NotImplementedError

    @property
    def backlog(self) -> int:
        """Response bytes written but not yet taken by the client's socket."""
        raise NotImplementedError

    def on_close(self, callback: Callable[[], None] | None) -> None:
        """``callback`` runs once if the client disconnects before the response is complete."""
        raise NotImplementedError

    def on_writable(self, callback: Callable[[], None]) -> None:
        """``callback`` runs once when the backlog has drained below the low-water mark."""
        raise NotImplementedError
