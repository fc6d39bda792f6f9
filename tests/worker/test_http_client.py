"""The worker's HTTP/1.1 client on its own, against the real echo server."""

from __future__ import annotations

import asyncio
import socket

import pytest

from invoker.worker.http_client import ConnectError, ConnectionClosed, HttpClient, ProtocolError, build_head
from tests.support.echo_server import EchoServer, pattern


def host(echo: EchoServer) -> list[tuple[str, str]]:
    return [("Host", f"127.0.0.1:{echo.port}")]


@pytest.fixture
async def client(echo: EchoServer) -> HttpClient:
    return HttpClient("127.0.0.1", echo.port, max_connections=4)


async def test_content_length_body_and_headers(echo: EchoServer, client: HttpClient) -> None:
    headers = [*host(echo), ("Content-Length", "5"), ("Content-Type", "text/plain"), ("X-Value", "a\xe9b")]
    async with await client.request("POST", "/echo", headers, b"hello") as response:
        assert response.status == 200
        assert response.header(b"content-length") == b"5"
        assert response.header(b"content-type") == b"text/plain"
        # latin-1 in, latin-1 out: the bytes survive.
        assert response.header(b"x-seen-x-value") == "a\xe9b".encode("latin-1")
        assert await response.read() == b"hello"
    client.close()


async def test_chunked_and_close_delimited_bodies(echo: EchoServer, client: HttpClient) -> None:
    async with await client.request("GET", "/chunked?parts=4", host(echo)) as response:
        assert response.header(b"transfer-encoding") == b"chunked"
        assert await response.read() == b"part-0part-1part-2part-3"
    assert client.idle_connections == 1
    async with await client.request("GET", "/until-close?bytes=5000", host(echo)) as response:
        assert response.header(b"content-length") is None
        assert await response.read() == pattern(5000)
    assert client.idle_connections == 0  # the connection ended with the close-delimited body
    client.close()


async def test_large_body_streams_in_pieces(echo: EchoServer, client: HttpClient) -> None:
    size = 6 * 1024 * 1024
    pieces = 0
    received = bytearray()
    async with await client.request("POST", f"/large?bytes={size}", [*host(echo), ("Content-Length", "0")]) as r:
        async for data in r:
            pieces += 1
            received += data
    assert bytes(received) == pattern(size)
    assert pieces > 1
    client.close()


async def test_keep_alive_reuses_one_connection(echo: EchoServer, client: HttpClient) -> None:
    for i in range(5):
        body = str(i).encode()
        async with await client.request("POST", "/echo", [*host(echo), ("Content-Length", "1")], body) as response:
            assert await response.read() == body
    assert echo.stats.requests == 5
    assert len(echo.connections) == 1
    assert client.idle_connections == 1
    client.close()


async def test_connection_close_is_honoured(echo: EchoServer, client: HttpClient) -> None:
    for _ in range(2):
        headers = [*host(echo), ("Content-Length", "0"), ("Connection", "close")]
        async with await client.request("POST", "/echo", headers) as response:
            assert response.header(b"connection") == b"close"
            await response.read()
    assert client.idle_connections == 0
    client.close()


async def test_head_answers_have_no_body(echo: EchoServer, client: HttpClient) -> None:
    async with await client.request("HEAD", "/large?bytes=1000", host(echo)) as response:
        assert response.header(b"content-length") == b"1000"
        assert await response.read() == b""
    async with await client.request("POST", "/echo", [*host(echo), ("Content-Length", "2")], b"ok") as response:
        assert await response.read() == b"ok"
    client.close()


async def test_stale_idle_connection_is_retried_once(echo: EchoServer, client: HttpClient) -> None:
    async with await client.request("GET", "/health", host(echo)) as response:
        assert await response.read() == b"ok"
    for conn in list(echo.connections):
        conn.close()  # the server drops the idle keep-alive connection
    await asyncio.sleep(0.05)
    async with await client.request("GET", "/health", host(echo)) as response:
        assert await response.read() == b"ok"
    client.close()


async def test_pool_never_exceeds_max_connections(echo: EchoServer) -> None:
    client = HttpClient("127.0.0.1", echo.port, max_connections=2)

    async def call(i: int) -> bytes:
        headers = [*host(echo), ("Content-Length", "0")]
        async with await client.request("POST", f"/slow?gate=pool&tag=t{i}", headers) as response:
            return await response.read()

    calls = [asyncio.ensure_future(call(i)) for i in range(4)]
    await echo.wait_for(lambda stats: len(stats.active) == 2)
    await asyncio.sleep(0.1)
    assert len(echo.stats.active) == 2
    echo.release("pool")
    results = await asyncio.gather(*calls)
    assert all(result == b'{"slept": 1.0}' for result in results)
    assert len(echo.connections) == 2
    client.close()


async def test_body_arrives_before_the_server_finishes(echo: EchoServer, client: HttpClient) -> None:
    async with await client.request("GET", "/sse?events=2&gate=stream&tag=s", host(echo)) as response:
        assert response.header(b"content-type") == b"text/event-stream"
        first = await response.receive()
        assert first == b'id: 0\ndata: {"i": 0}\n\n'
        assert "s" in echo.stats.active
        echo.release("stream")
        assert await response.read() == b'id: 1\ndata: {"i": 1}\n\n'
    client.close()


async def test_abort_disconnects_from_the_server(echo: EchoServer, client: HttpClient) -> None:
    response = await client.request("POST", "/sse?events=2&gate=never&tag=a", [*host(echo), ("Content-Length", "0")])
    assert await response.receive()
    response.abort()
    await echo.wait_for(lambda stats: "a" in stats.disconnects)
    # The slot came back: the next request does not wait.
    async with await client.request("GET", "/health", host(echo)) as again:
        assert await again.read() == b"ok"
    client.close()


async def test_cancelling_a_waiting_request_aborts_it(echo: EchoServer, client: HttpClient) -> None:
    task = asyncio.ensure_future(
        client.request("POST", "/slow?gate=never&tag=c", [*host(echo), ("Content-Length", "0")])
    )
    await echo.wait_for(lambda stats: "c" in stats.active)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await echo.wait_for(lambda stats: "c" in stats.disconnects)
    client.close()


async def test_truncated_body_raises(echo: EchoServer, client: HttpClient) -> None:
    async with await client.request("POST", "/broken?bytes=100", [*host(echo), ("Content-Length", "0")]) as response:
        with pytest.raises(ConnectionClosed):
            await response.read()
    client.close()


async def test_refused_connection_raises_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpClient("127.0.0.1", port)
    with pytest.raises(ConnectError):
        await client.request("GET", "/", [("Host", "x")])


async def test_garbage_answer_raises_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = HttpClient("127.0.0.1", port)
    try:
        with pytest.raises(ProtocolError):
            await client.request("GET", "/", [("Host", "x")])
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_request_head_refuses_injection() -> None:
    assert build_head("GET", "/a?b=c", [("Host", "h"), ("X", "1")]) == b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nX: 1\r\n\r\n"
    cases: list[tuple[str, list[tuple[str, str]]]] = [
        ("/a HTTP/1.1\r\nX: y", []),
        ("relative", []),
        ("/", [("X", "1\r\nInjected: yes")]),
        ("/", [("X\nY", "1")]),
    ]
    for target, headers in cases:
        with pytest.raises(ValueError):
            build_head("GET", target, headers)
