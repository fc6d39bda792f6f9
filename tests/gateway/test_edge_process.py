"""The HTTP edge holds against abusive clients: a real ``cfgate serve`` process, raw sockets.

Slowloris and idle sockets are closed after their timeouts while ``/health`` answers; oversized
heads get 431, a declared oversized body 413 before it is sent, queued bodies past the byte
budget 429 (and the gateway's memory stays bounded), a slow SSE reader does not grow the
gateway's memory, parser errors are problem+json, and the 64 MiB body limit agrees with the
worker's gRPC message limit.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from bench.tls import self_signed
from gateway import sample
from invoker.limits import MAX_INVOCATION_BODY_BYTES
from tests.gateway.test_server_process import wait_healthy
from tests.servers import find_free_port

MiB = 1 << 20
PROBLEM = "application/problem+json"


@dataclass
class Served:
    port: int
    worker_port: int
    proc: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self, field: str = "VmRSS") -> int:
        """The gateway process's resident memory (``VmHWM``: its peak so far), in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc status")


def serve(tmp: Path, **settings: int | str) -> Iterator[Served]:
    port, worker_port = find_free_port(), find_free_port()
    env = {**os.environ, **{f"CFGATE_{k.upper()}": str(v) for k, v in settings.items()}}
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        "--grpc-port",
        "0",
        "--worker-port",
        str(worker_port),
    ]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(tmp)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        if "tls_cert" in settings:
            wait_tls_healthy(f"https://127.0.0.1:{port}/health", proc)
        else:
            wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        yield Served(port, worker_port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Short timeouts, small heads, a 64 MiB body budget."""
    yield from serve(
        tmp_path_factory.mktemp("tight"),
        header_timeout_seconds=1,
        keepalive_timeout_seconds=1,
        max_header_bytes=4096,
        max_header_count=20,
        max_queued_body_bytes=64 * MiB,
    )


def create_function(base: str, container_port: int, name: str) -> tuple[sample.SampleFunction, str]:
    """A deployed function (served by a container on ``container_port``) and an invoke key."""

    async def create() -> tuple[sample.SampleFunction, str]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            token = await sample.admin_token(http)
            function = await sample.create_function(http, token, container_port, name=name)
            return function, await sample.invoke_key(http, token)

    return asyncio.run(create())


def wait_active(base: str, function: sample.SampleFunction) -> None:
    async def active() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await sample.wait_active(http, function)

    asyncio.run(active())


def wait_tls_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited early with {proc.returncode}"
        try:
            if httpx.get(url, timeout=1.0, verify=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


_opened: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def connect(port: int) -> socket.socket:
    """A client socket, closed at the end of the test."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    _opened.append(sock)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (content-length delimited, or until close)."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            raise AssertionError(f"connection closed before a response head: {data!r}")
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "-1"))
    while length < 0 or len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return status, headers, body


def closed_by_server(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sent until it closed the connection (fails if it never does)."""
    sock.settimeout(timeout)
    received = b""
    while True:
        part = sock.recv(65536)
        if not part:
            return received
        received += part


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, object]:
    assert status == expected
    assert headers["content-type"] == PROBLEM
    problem: dict[str, object] = orjson.loads(body)
    assert problem["status"] == expected
    assert set(problem) >= {"type", "title", "status", "detail"}
    return problem


def health(base: str) -> int:
    return httpx.get(base + "/health", timeout=10).status_code


# --- timeouts and the connection cap ----------------------------------------------------------


def test_idle_and_slowloris_sockets_are_closed_while_health_answers(tight: Served) -> None:
    idle = [connect(tight.port) for _ in range(40)]
    slow = [connect(tight.port) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: api.localhost\r\n")
    assert health(tight.base) == 200  # while all 60 are open
    # The slowloris keep trickling header lines; the head timeout is counted from its first byte.
    for _ in range(3):
        for sock in slow:
            try:
                sock.sendall(b"X-Trickle: 1\r\n")
            except OSError:
                pass
        assert health(tight.base) == 200
        time.sleep(0.5)
    for sock in idle:
        assert closed_by_server(sock) == b""  # idle: closed without a word
    for sock in slow:
        answer = closed_by_server(sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"content-type: application/problem+json" in answer
        sock.close()
    assert health(tight.base) == 200


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("capped"), max_connections=16, keepalive_timeout_seconds=60)


def test_over_the_connection_cap_only_health_answers(capped: Served) -> None:
    held = [connect(capped.port) for _ in range(16)]
    try:
        time.sleep(0.2)  # let the server accept them all before the next one
        over = connect(capped.port)
        over.sendall(b"GET /health HTTP/1.1\r\nHost: api.localhost\r\n\r\n")
        status, headers, body = read_response(over)
        assert status == 200 and orjson.loads(body)["status"] == "UP"
        other = connect(capped.port)
        other.sendall(b"GET /v2/nvcf/functions HTTP/1.1\r\nHost: api.localhost\r\n\r\n")
        status, headers, body = read_response(other)
        assert_problem(status, headers, body, 503)
        assert headers["retry-after"] == "1"
        assert headers["connection"] == "close"
    finally:
        for sock in held:
            sock.close()


# --- heads and bodies -------------------------------------------------------------------------


def test_oversized_head_is_431(tight: Served) -> None:
    sock = connect(tight.port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: api.localhost\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
    assert_problem(*read_response(sock), 431)
    assert closed_by_server(sock) == b""


def test_too_many_headers_is_431(tight: Served) -> None:
    sock = connect(tight.port)
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(40))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: api.localhost\r\n" + lines + b"\r\n")
    problem = assert_problem(*read_response(sock), 431)
    assert "headers" in str(problem["detail"])


def test_declared_oversized_body_is_413_before_it_is_sent(tight: Served) -> None:
    sock = connect(tight.port)
    head = (
        b"POST /v2/nvcf/pexec/functions/6a0e6d8a-4d43-4f4b-9b35-9b0f6e0e7a11 HTTP/1.1\r\n"
        b"Host: invocation.localhost\r\nAuthorization: Bearer nvapi-x\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (100 * MiB)
    )
    sock.sendall(head)  # and not a byte of the body: the answer must come anyway
    assert_problem(*read_response(sock), 413)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost api.localhost\r\n\r\n",
        b"POST /v2/nvcf/pexec/functions/x HTTP/1.1\r\nHost: invocation.localhost\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: 12abc\r\nHost: api.localhost\r\n\r\n",
    ],
    ids=["method", "header-line", "chunk-size", "content-length"],
)
def test_parser_errors_are_problem_json(tight: Served, request_bytes: bytes) -> None:
    sock = connect(tight.port)
    sock.sendall(request_bytes)
    assert_problem(*read_response(sock), 400)


# --- the byte budget ----------------------------------------------------------------------------


def post_streaming(port: int, head: bytes, size: int) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and then ``size`` body bytes, stopping early if the server answers first."""
    sock = connect(port)
    sock.sendall(head)
    chunk = b"x" * MiB
    sent = 0
    try:
        while sent < size:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(chunk[: size - sent])
            sent += len(chunk)
    except OSError:  # refused mid-body: the answer is already waiting
        pass
    try:
        return read_response(sock)
    finally:
        sock.close()


@pytest.fixture(scope="module")
def deployed(tight: Served) -> Iterator[tuple[str, str]]:
    """A function whose one worker takes one invocation and never answers: bodies stay held."""

    function, key = create_function(tight.base, find_free_port(), "held")
    target = f"127.0.0.1:{tight.worker_port}"
    hold = [sys.executable, "-m", "tests.cluster.hold_worker", target, function.admin_token, function.function_id, "1"]
    worker = subprocess.Popen(hold, stdout=subprocess.DEVNULL)
    try:
        wait_active(tight.base, function)
        yield function.function_id, key
    finally:
        worker.kill()
        worker.wait()


def test_byte_budget_gives_429_and_memory_stays_bounded(tight: Served, deployed: tuple[str, str]) -> None:
    function_id, key = deployed
    head = (
        b"POST /v2/nvcf/pexec/functions/%s HTTP/1.1\r\nHost: invocation.localhost\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
        b"NVCF-POLL-SECONDS: 1\r\nContent-Length: %d\r\n\r\n" % (function_id.encode(), key.encode(), 32 * MiB)
    )
    before = tight.rss()

    async def attempts() -> list[tuple[int, dict[str, str], bytes]]:
        return await asyncio.gather(*(asyncio.to_thread(post_streaming, tight.port, head, 32 * MiB) for _ in range(12)))

    answers = asyncio.run(attempts())
    statuses = sorted(status for status, _, _ in answers)
    peak = tight.rss("VmHWM")
    # 64 MiB budget: two bodies are held (202 after the 1 s poll window), the rest refused.
    assert statuses.count(202) == 2, statuses
    assert statuses.count(429) == 10, statuses
    for status, headers, body in answers:
        if status == 429:
            assert_problem(status, headers, body, 429)
            assert headers["retry-after"] == "1"
    # Without the budget the gateway reads all twelve (> 384 MiB); with it, two and their copies.
    assert peak - before < 256 * MiB, (before, peak)


# --- a real worker: the 64 MiB limit and a slow SSE reader --------------------------------------


@dataclass
class Stack:
    served: Served
    function_id: str
    key: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    for served in serve(tmp / "gateway", max_stream_backlog_bytes=1 * MiB):
        echo_port = find_free_port()
        echo = subprocess.Popen([sys.executable, "-m", "tests.support.echo_server", "--port", str(echo_port)])
        worker: subprocess.Popen[bytes] | None = None
        try:
            function, key = create_function(served.base, echo_port, "echo")
            command = sample.worker_command(f"127.0.0.1:{served.worker_port}", function, echo_port)
            worker = subprocess.Popen(command, env=sample.worker_env(function))
            wait_active(served.base, function)
            yield Stack(served, function.function_id, key)
        finally:
            for proc in (worker, echo):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)


def test_64_mib_body_is_refused_up_front_and_the_largest_allowed_is_delivered(stack: Stack) -> None:
    host = f"{stack.function_id}.invocation.localhost".encode()
    auth = b"Authorization: Bearer " + stack.key.encode()
    over = b"POST /slow?seconds=0 HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: %d\r\n\r\n" % (host, auth, 64 * MiB)
    sock = connect(stack.served.port)
    sock.sendall(over)  # no body sent: refused from the declared length
    problem = assert_problem(*read_response(sock), 413)
    assert str(MAX_INVOCATION_BODY_BYTES) in str(problem["detail"])
    sock.close()
    # The largest body the gateway takes fits the worker's gRPC message limit: it gets there.
    fits = b"POST /slow?seconds=0 HTTP/1.1\r\nHost: %s\r\n%s\r\nContent-Length: %d\r\n\r\n" % (
        host,
        auth,
        MAX_INVOCATION_BODY_BYTES,
    )
    status, headers, body = post_streaming(stack.served.port, fits, MAX_INVOCATION_BODY_BYTES)
    assert status == 200, body[:300]
    assert headers["nvcf-status"] == "fulfilled"
    assert orjson.loads(body) == {"slept": 0.0}


def test_slow_sse_reader_does_not_grow_gateway_memory(stack: Stack) -> None:
    """A client that never reads a 48 MiB event stream: the gateway holds at most its backlog."""
    served = stack.served
    sock = connect(served.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    before = served.rss("VmHWM")
    sock.sendall(
        b"GET /sse?events=768&pad=65536 HTTP/1.1\r\nHost: %s.invocation.localhost\r\n"
        b"Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n"
        % (stack.function_id.encode(), stack.key.encode())
    )
    # A reader of 64 KiB every 50 ms (a 48 MiB stream would take 40 s): the gateway must not
    # take the stream in faster than the client reads it.
    sock.settimeout(30)
    received = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and served.rss("VmHWM") - before < 24 * MiB:
        part = sock.recv(64 << 10)
        if not part:
            break
        received += len(part)
        time.sleep(0.05)
        if received % (4 * MiB) < (64 << 10):
            assert httpx.get(served.base + "/health", timeout=10).status_code == 200
    grown = served.rss("VmHWM") - before
    sock.close()
    assert grown < 24 * MiB, grown
    assert httpx.get(served.base + "/health", timeout=10).status_code == 200


# --- TLS ----------------------------------------------------------------------------------------


def test_tls_edge_serves_hot_path_and_control_plane(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "certs")
    for served in serve(tmp_path / "data", tls_cert=str(cert), tls_key=str(key)):
        base = f"https://127.0.0.1:{served.port}"
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=base, verify=trusted, timeout=30) as https:
            assert https.get("/health").json()["status"] == "UP"
            token = https.post("/v1/admin/keys", headers={"Host": "api-keys.localhost"}).json()["value"]
            listed = https.get(
                "/v2/nvcf/functions", headers={"Host": "api.localhost", "Authorization": f"Bearer {token}"}
            )
            assert listed.status_code == 200 and listed.json() == {"functions": []}
            missing = https.post(
                "/v2/nvcf/pexec/functions/6a0e6d8a-4d43-4f4b-9b35-9b0f6e0e7a11",
                json={},
                headers={"Host": "invocation.localhost", "Authorization": f"Bearer {token}"},
            )
            assert missing.status_code == 403  # the admin token may not invoke: decided on the hot path
            assert missing.headers["content-type"] == PROBLEM
            assert missing.headers["nvcf-status"] == "errored"
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port is not answered
            httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=5)


def test_pipelined_requests_are_answered_in_order(tight: Served) -> None:
    """Hot (``/health``) and control-plane requests in one write: three answers, in order."""
    sock = connect(tight.port)
    sock.sendall(
        b"GET /health HTTP/1.1\r\nHost: api.localhost\r\n\r\n"
        b"GET /v2/nvcf/functions HTTP/1.1\r\nHost: api.localhost\r\n\r\n"
        b"GET /health HTTP/1.1\r\nHost: api.localhost\r\nConnection: close\r\n\r\n"
    )
    received = closed_by_server(sock)
    heads = [part.split(b"\r\n", 1)[0] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert heads == [b"200 OK", b"401 Unauthorized", b"200 OK"]
    assert received.count(b'"status":"UP"') == 2


def test_sigterm_drains_an_invocation_in_flight(tmp_path: Path) -> None:
    """SIGTERM: no new connections, but the pexec waiting for its answer still gets it (a 202
    when its window passes), with ``connection: close``; then the process exits cleanly."""
    for served in serve(tmp_path, keepalive_timeout_seconds=30):
        function, key = create_function(served.base, find_free_port(), "drain")
        target = f"127.0.0.1:{served.worker_port}"
        hold = [sys.executable, "-m", "tests.cluster.hold_worker", target, function.admin_token, function.function_id]
        worker = subprocess.Popen([*hold, "1"], stdout=subprocess.PIPE)
        try:
            wait_active(served.base, function)
            sock = connect(served.port)
            sock.sendall(
                b"POST /v2/nvcf/pexec/functions/%s HTTP/1.1\r\nHost: invocation.localhost\r\n"
                b"Authorization: Bearer %s\r\nNVCF-POLL-SECONDS: 2\r\nContent-Type: application/json\r\n"
                b"Content-Length: 2\r\n\r\n{}" % (function.function_id.encode(), key.encode())
            )
            assert worker.stdout is not None
            while not (line := worker.stdout.readline()).startswith(b"got "):
                assert line, "the worker ended before the invocation reached it"
            served.proc.send_signal(signal.SIGTERM)
            status, headers, _ = read_response(sock)
            assert status == 202 and headers["nvcf-status"] == "in-progress"
            assert headers["connection"] == "close"
            assert served.proc.wait(30) in (0, -signal.SIGTERM)
        finally:
            worker.kill()
            worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
