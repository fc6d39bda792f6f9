"""``GET /metrics`` on a port (or Unix socket) of its own, served on the process's event loop.

On the loop, not in prometheus-client's HTTP thread: what a scrape reads (queue depths in Redis,
the dispatcher's sessions) belongs to the loop, and a thread would race it. One request per
connection; anything but ``GET /metrics`` (or ``/``) is a 404 / 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

log = logging.getLogger("invoker.metrics")

Render = Callable[[], Awaitable[bytes]]

# The classic text format, which every Prometheus reads (prometheus-client's CONTENT_TYPE_LATEST
# names a newer version in recent releases; what generate_latest writes for these names is the same).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEAD_LIMIT = 8 << 10
HEAD_TIMEOUT_SECONDS = 10.0


class MetricsServer:
    def __init__(self, render: Render) -> None:
        self.render = render
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start_tcp(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def start_unix(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a restarted child of --processes takes its predecessor's place
        self._server = await asyncio.start_unix_server(self._serve, path)
        os.chmod(path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body, content_type = await self._answer(head)
            writer.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, _REASONS[status], content_type, len(body), body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> tuple[int, bytes, bytes]:
        if len(head) > HEAD_LIMIT:
            return 431, b"request head too large\n", b"text/plain"
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if path not in (b"/metrics", b"/"):
            return 404, b"not found: scrape /metrics\n", b"text/plain"
        if method != b"GET":
            return 405, b"only GET\n", b"text/plain"
        try:
            body = await self.render()
        except Exception:
            log.exception("metrics collection failed")
            return 500, b"metrics collection failed\n", b"text/plain"
        return 200, body, CONTENT_TYPE.encode()


_REASONS = {
    200: b"OK",
    404: b"Not Found",
    405: b"Method Not Allowed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
}


def render_families(collector: object) -> bytes:
    """The text exposition of one collector's families (prometheus-client's own writer)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry)
