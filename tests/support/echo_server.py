"""A small, real HTTP/1.1 inference server for tests and benchmarks: raw asyncio + httptools.

Run it as a subprocess (``python -m tests.support.echo_server --port P``; ``--port 0`` picks a
free port, and the first line printed is ``echo-server listening on http://HOST:PORT``) or in
process (``async with EchoServer() as server: ... server.port``).

Routes (query parameters in brackets):

- ``GET /health`` → 200 ``ok``.
- ``POST /echo`` [``json=1``, ``plain=1``, ``status=S``] → the request body with the request's
  Content-Type, and every request header echoed as ``x-seen-<lower-case name>`` (repeated names
  joined by ``, ``; ``plain=1``: no x-seen headers, for benchmarks).
  With ``json=1``: ``{"method", "path", "query", "headers": [[name, value], ...], "body"}``.
- ``GET|POST /sse`` [``events=N`` (3), ``interval=S`` (0), ``gate=G``, ``pad=B``] → ``text/event-stream``,
  chunked, N events ``id: i`` / ``data: {"i": i}`` (``pad``: a comment line of B bytes in each).
  With a gate, the server stops after the first event until the gate is released.
- ``POST /slow`` [``seconds=S`` (1), ``gate=G``] → waits S seconds (or until the gate opens), then
  ``{"slept": S}``. A client that disconnects while it waits is recorded in ``disconnects``.
- ``POST /progress`` [``steps=N`` (3), ``interval=S`` (0.3), ``gate=G``] → writes
  ``$NVCF-LARGE-OUTPUT-DIR/progress`` (``{"id", "progress", "partialResponse": {"step": i}}``) N
  times with progress ``round(100*i/N)``; between writes it sleeps S seconds, or with a gate waits
  for ``G-<i>`` to be released; then answers ``{"done": true, "steps": N}``.
- ``POST /large`` [``bytes=N`` (6 MiB), ``content_type=``] → N bytes of ``pattern(N)`` with a
  Content-Length (a HEAD request gets the headers only).
- ``POST /files`` [``names=a.txt,dir/b.bin``, ``bytes=N`` (32)] → writes each file into
  NVCF-LARGE-OUTPUT-DIR with content ``file_content(name, N)``, answers ``{"files": [...]}``.
- ``POST /error`` [``status=S`` (500), ``message=M``, ``raw=1``] → ``{"error": M}`` with status S
  (``raw=1``: a plain-text body instead).
- ``POST /assets`` [``content=1``] → ``{"ids": <NVCF-FUNCTION-ASSET-IDS>, "dir": <NVCF-ASSET-DIR>,
  "files": {name: sha256}}`` (``content=1``: also ``"contents": {name: base64 of the file}``, the
  bytes as the container read them).
- ``GET /blob`` [``text=T``, ``host=H``] → T as ``application/octet-stream`` (a download source for
  assets); with ``host``, 404 unless the request's ``Host`` is H (as a Host-routing gateway would).
- ``GET|POST /secrets`` → ``{"secrets": <the secrets file as parsed JSON, null when absent>,
  "mode": "0o600"}``, read at each request from ``--secrets-file`` (NVCF's default
  ``/var/secrets/secrets.json``), as a function container reads its secrets.
- ``GET /chunked`` [``parts=N`` (3)] → a chunked body ``part-0`` … ``part-N-1``.
- ``GET /until-close`` [``bytes=N``] → a body delimited by closing the connection (no length, not chunked).
- ``POST /broken`` [``bytes=N`` (1000)] → announces 2N bytes, sends N, then closes the connection.
- ``GET /stats`` → ``{"requests", "active": [...], "disconnects": [...]}``, requests named by their
  ``NVCF-REQID`` header (or ``tag`` query parameter).
- ``GET|POST /release`` [``gate=G``] → opens gate G (gates may be released before anyone waits).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import cast
from urllib.parse import parse_qs

import httptools

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_PATTERN = bytes(range(256)) * 4096  # 1 MiB


def pattern(size: int) -> bytes:
    """The deterministic body of ``/large?bytes=size``."""
    whole, rest = divmod(size, len(_PATTERN))
    return _PATTERN * whole + _PATTERN[:rest]


def file_content(name: str, size: int) -> bytes:
    """The deterministic content ``/files`` writes for ``name``."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    @property
    def name(self) -> str:
        return self.header("nvcf-reqid") or self.query.get("tag", "")


@dataclass
class Stats:
    requests: int = 0
    active: list[str] = field(default_factory=list)
    disconnects: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"requests": self.requests, "active": list(self.active), "disconnects": list(self.disconnects)}


class _Disconnected(Exception):
    pass


class _Connection(asyncio.Protocol):
    def __init__(self, server: EchoServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.lost = asyncio.Event()
        self.pending: list[Request] = []
        self.busy = False
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.write_simple(400, [], b"bad request", keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        self.server.connections.discard(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        query = {k: v[-1] for k, v in parse_qs((url.query or b"").decode()).items()}
        request = Request(
            method=self.parser.get_method().decode(),
            path=url.path.decode(),
            query=query,
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self.parser.should_keep_alive(),
        )
        self.pending.append(request)
        if not self.busy:
            self._next()

    # serving
    def _next(self) -> None:
        while self.pending and not self.busy:
            request = self.pending.pop(0)
            self.server.stats.requests += 1
            handler = self.server.route(request)
            if isinstance(handler, _Sync):
                status, headers, body = handler.fn(request)
                self.write_simple(status, headers, body, keep_alive=request.keep_alive, head=request.method == "HEAD")
            else:
                self.busy = True
                task = asyncio.get_running_loop().create_task(self._serve(handler, request))
                self.server.tasks.add(task)
                task.add_done_callback(self.server.tasks.discard)

    async def _serve(self, handler: AsyncHandler, request: Request) -> None:
        name = request.name
        self.server.stats.active.append(name)
        try:
            await handler(request, Responder(self, request))
        except _Disconnected:
            self.server.stats.disconnects.append(name)
        except Exception as exc:  # a broken test route must not kill the server
            self.write_simple(500, [], f"echo server error: {exc!r}".encode(), keep_alive=False)
        finally:
            self.server.stats.active.remove(name)
            self.busy = False
        if not request.keep_alive:
            self.close()
        elif not self.lost.is_set():
            self._next()

    def write(self, data: bytes) -> None:
        if self.lost.is_set() or self.transport is None:
            raise _Disconnected
        self.transport.write(data)

    def write_simple(
        self, status: int, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool, head: bool = False
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n", f"content-length: {len(body)}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if not keep_alive:
            lines.append("connection: close\r\n")
        lines.append("\r\n")
        payload = "".join(lines).encode("latin-1")
        if self.transport is None or self.lost.is_set():
            return
        if head or not body:
            self.transport.write(payload)
        elif len(body) < 65536:
            self.transport.write(payload + body)
        else:
            self.transport.writelines((payload, body))
        if not keep_alive:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Responder:
    """What an asynchronous route writes with: a head, then chunks (chunked encoding) or a whole body."""

    def __init__(self, conn: _Connection, request: Request) -> None:
        self.conn = conn
        self.request = request

    async def wait(self, seconds: float = 0.0, gate: str | None = None) -> None:
        """Sleep (or wait for a gate); raise _Disconnected as soon as the client goes away."""
        waiter: Awaitable[object] = self.conn.server.gate(gate).wait() if gate else asyncio.sleep(seconds)
        sleeper = asyncio.ensure_future(waiter)
        lost = asyncio.ensure_future(self.conn.lost.wait())
        try:
            await asyncio.wait({sleeper, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            lost.cancel()
        if self.conn.lost.is_set():
            raise _Disconnected

    def send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.conn.lost.is_set():
            raise _Disconnected
        self.conn.write_simple(status, headers, body, keep_alive=self.request.keep_alive)

    def start_chunked(self, status: int, headers: list[tuple[str, str]]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n", "transfer-encoding: chunked\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        lines.append("\r\n")
        self.conn.write("".join(lines).encode("latin-1"))

    def chunk(self, data: bytes) -> None:
        self.conn.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        self.conn.write(b"0\r\n\r\n")


SyncResult = tuple[int, list[tuple[str, str]], bytes]
AsyncHandler = Callable[[Request, Responder], Awaitable[None]]


@dataclass
class _Sync:
    fn: Callable[[Request], SyncResult]


def _json(status: int, payload: object) -> SyncResult:
    return status, [("content-type", "application/json")], json.dumps(payload).encode()


class EchoServer:
    """The server; start it with ``async with EchoServer() as server`` or ``await server.start()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, secrets_file: str = "/var/secrets/secrets.json") -> None:
        self.host = host
        self.port = port
        self.secrets_file = Path(secrets_file)
        self.stats = Stats()
        self.gates: dict[str, asyncio.Event] = {}
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._sync: dict[str, Callable[[Request], SyncResult]] = {
            "/health": lambda r: (200, [("content-type", "text/plain")], b"ok"),
            "/echo": self._echo,
            "/large": self._large,
            "/files": self._files,
            "/error": self._error,
            "/assets": self._assets,
            "/blob": self._blob,
            "/secrets": self._secrets,
            "/stats": lambda r: _json(200, self.stats.as_json()),
            "/release": self._release,
        }
        self._async: dict[str, AsyncHandler] = {
            "/sse": self._sse,
            "/slow": self._slow,
            "/progress": self._progress,
            "/chunked": self._chunked,
            "/until-close": self._until_close,
            "/broken": self._broken,
        }

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> EchoServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self.connections):
                conn.close()
            for task in list(self.tasks):
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> EchoServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    async def wait_for(self, predicate: Callable[[Stats], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(stats)`` holds (for in-process tests)."""
        async with asyncio.timeout(timeout):
            while not predicate(self.stats):
                await asyncio.sleep(0.01)

    def route(self, request: Request) -> _Sync | AsyncHandler:
        sync = self._sync.get(request.path)
        if sync is not None:
            return _Sync(sync)
        handler = self._async.get(request.path)
        if handler is not None:
            return handler
        return _Sync(lambda r: _json(404, {"error": f"no route {r.path}"}))

    # synchronous routes
    def _echo(self, request: Request) -> SyncResult:
        status = int(request.query.get("status", "200"))
        if request.query.get("json"):
            return _json(
                status,
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": [[k, v] for k, v in request.headers],
                    "body": request.body.decode("utf-8", "replace"),
                },
            )
        headers = [("content-type", request.header("content-type") or "application/octet-stream")]
        if request.query.get("plain"):
            return status, headers, request.body
        seen: dict[str, list[str]] = {}
        for name, value in request.headers:
            seen.setdefault(name.lower(), []).append(value)
        headers += [(f"x-seen-{name}", ", ".join(values)) for name, values in seen.items()]
        return status, headers, request.body

    def _large(self, request: Request) -> SyncResult:
        size = int(request.query.get("bytes", str(6 << 20)))
        content_type = request.query.get("content_type", "application/octet-stream")
        return 200, [("content-type", content_type)], pattern(size)

    def _files(self, request: Request) -> SyncResult:
        directory = Path(request.header("nvcf-large-output-dir") or ".")
        names = [n for n in request.query.get("names", "a.txt").split(",") if n]
        size = int(request.query.get("bytes", "32"))
        for name in names:
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file_content(name, size))
        return _json(200, {"files": names})

    def _error(self, request: Request) -> SyncResult:
        status = int(request.query.get("status", "500"))
        message = request.query.get("message", "inference failed")
        if request.query.get("raw"):
            return status, [("content-type", "text/plain")], message.encode()
        return _json(status, {"error": message})

    def _blob(self, request: Request) -> SyncResult:
        wanted = request.query.get("host")
        if wanted is not None and request.header("host") != wanted:
            return _json(404, {"error": f"unknown host {request.header('host')!r}"})
        return 200, [("content-type", "application/octet-stream")], request.query.get("text", "").encode()

    def _secrets(self, _request: Request) -> SyncResult:
        try:
            data = self.secrets_file.read_bytes()
            mode = oct(self.secrets_file.stat().st_mode & 0o777)
        except FileNotFoundError:
            return _json(200, {"secrets": None, "mode": None})
        return _json(200, {"secrets": json.loads(data), "mode": mode})

    def _assets(self, request: Request) -> SyncResult:
        directory = request.header("nvcf-asset-dir") or ""
        files: dict[str, str] = {}
        contents: dict[str, str] = {}
        if directory and os.path.isdir(directory):
            for entry in sorted(os.listdir(directory)):
                data = Path(directory, entry).read_bytes()
                files[entry] = hashlib.sha256(data).hexdigest()
                contents[entry] = base64.b64encode(data).decode()
        document: dict[str, object] = {"ids": request.header("nvcf-function-asset-ids"), "dir": directory}
        document["files"] = files
        if request.query.get("content"):
            document["contents"] = contents
        return _json(200, document)

    def _release(self, request: Request) -> SyncResult:
        name = request.query.get("gate", "")
        self.release(name)
        return _json(200, {"released": name})

    # asynchronous routes
    async def _sse(self, request: Request, responder: Responder) -> None:
        events = int(request.query.get("events", "3"))
        interval = float(request.query.get("interval", "0"))
        gate = request.query.get("gate")
        pad = ": " + "p" * int(request.query.get("pad", "0")) + "\n" if request.query.get("pad") else ""
        responder.start_chunked(200, [("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        for i in range(events):
            if i == 1 and gate:
                await responder.wait(gate=gate)
            elif i and interval:
                await responder.wait(interval)
            responder.chunk(f'{pad}id: {i}\ndata: {{"i": {i}}}\n\n'.encode())
        responder.end_chunked()

    async def _slow(self, request: Request, responder: Responder) -> None:
        seconds = float(request.query.get("seconds", "1"))
        await responder.wait(seconds, request.query.get("gate"))
        responder.send(*_json(200, {"slept": seconds}))

    async def _progress(self, request: Request, responder: Responder) -> None:
        steps = int(request.query.get("steps", "3"))
        interval = float(request.query.get("interval", "0.3"))
        gate = request.query.get("gate")
        target = Path(request.header("nvcf-large-output-dir") or ".") / "progress"
        for i in range(1, steps + 1):
            document = {
                "id": request.header("nvcf-reqid"),
                "progress": round(100 * i / steps),
                "partialResponse": {"step": i},
            }
            target.write_text(json.dumps(document))
            await responder.wait(interval, f"{gate}-{i}" if gate else None)
        responder.send(*_json(200, {"done": True, "steps": steps}))

    async def _chunked(self, request: Request, responder: Responder) -> None:
        responder.start_chunked(200, [("content-type", "text/plain")])
        for i in range(int(request.query.get("parts", "3"))):
            responder.chunk(f"part-{i}".encode())
        responder.end_chunked()

    async def _until_close(self, request: Request, responder: Responder) -> None:
        body = pattern(int(request.query.get("bytes", "1000")))
        responder.conn.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n")
        responder.conn.write(body)
        request.keep_alive = False

    async def _broken(self, request: Request, responder: Responder) -> None:
        size = int(request.query.get("bytes", "1000"))
        responder.conn.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (2 * size))
        responder.conn.write(pattern(size))
        await asyncio.sleep(0.05)
        request.keep_alive = False


async def _serve(host: str, port: int, secrets_file: str) -> None:
    server = EchoServer(host, port, secrets_file)
    await server.start()
    print(f"echo-server listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.echo_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    parser.add_argument("--secrets-file", default="/var/secrets/secrets.json", help="what GET /secrets reads")
    args = parser.parse_args(argv)
    runner: Callable[..., object] = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    runner(_serve(args.host, args.port, args.secrets_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
