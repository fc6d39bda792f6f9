"""Services configured as ``upstream = http://host:port`` are proxied (gateway/proxy.py), for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.settings import Settings, SettingsError
from tests.proxy.conftest import ProxyGateway, Upstream
from tests.servers import find_free_port


def _headers(seen: dict[str, object]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for key, value in seen["headers"]:  # type: ignore[attr-defined]
        found.setdefault(key, []).append(value)
    return found


async def test_request_goes_upstream_with_forwarding_headers_and_without_hop_by_hop(
    proxy_gateway: ProxyGateway, upstream: Upstream
) -> None:
    async with proxy_gateway.client("api-keys.localhost") as client:
        answer = await client.post(
            "/v1/keys/abc?page=2",
            content=b'{"a": 1}',
            headers={
                "Content-Type": "application/json",
                "Connection": "keep-alive, X-Drop-Me",
                "X-Drop-Me": "1",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "X-Forwarded-For": "10.1.2.3",
                "X-Custom": "kept",
            },
        )
    assert answer.status_code == 201
    assert answer.json() == {"size": 8}
    seen = upstream.seen[-1]
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == (
        "POST",
        "/v1/keys/abc",
        b"page=2",
        b'{"a": 1}',
    )
    headers = _headers(seen)
    assert headers[b"host"] == [f"127.0.0.1:{upstream.port}".encode()]
    assert headers[b"x-forwarded-for"] == [b"10.1.2.3, 127.0.0.1"]
    assert headers[b"x-forwarded-proto"] == [b"http"]
    assert headers[b"x-forwarded-host"] == [b"api-keys.localhost"]
    assert headers[b"x-custom"] == [b"kept"]
    assert headers[b"content-length"] == [b"8"]
    for dropped in (b"x-drop-me", b"keep-alive", b"te", b"authorization"):
        assert dropped not in headers


async def test_answer_headers_lose_hop_by_hop_and_connection_named_ones(proxy_gateway: ProxyGateway) -> None:
    async with proxy_gateway.client("api-keys.localhost") as client:
        answer = await client.get("/anything")
    assert answer.status_code == 201
    assert answer.headers["x-upstream"] == "yes"
    assert answer.headers["content-type"] == "application/json"
    assert "x-secret" not in answer.headers
    assert "keep-alive" not in answer.headers


async def test_path_prefix_of_the_upstream_url_is_kept(proxy_gateway: ProxyGateway, upstream: Upstream) -> None:
    async with proxy_gateway.client("tasks.localhost") as client:
        answer = await client.get("/v1/nvct/tasks")
    assert answer.status_code == 201
    assert upstream.seen[-1]["path"] == "/prefix/v1/nvct/tasks"


async def test_answer_streams_chunk_by_chunk(proxy_gateway: ProxyGateway, upstream: Upstream) -> None:
    """The upstream sends its next part only after the client has received the previous one."""
    received: list[bytes] = []
    async with proxy_gateway.client("api-keys.localhost") as client:
        async with client.stream("GET", "/stream") as answer:
            assert answer.status_code == 200
            async for piece in answer.aiter_raw():
                received.append(piece)
                upstream.gate.set()
    assert b"".join(received) == b"part-0;part-1;part-2;"
    assert len(received) >= 3


async def test_large_and_chunked_request_bodies_stream_through(proxy_gateway: ProxyGateway, upstream: Upstream) -> None:
    large = bytes(range(256)) * 1024  # 256 KiB with a Content-Length

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(4):
            await asyncio.sleep(0.01)
            yield b"piece-%d;" % i

    async with proxy_gateway.client("api-keys.localhost") as client:
        sized = await client.put("/v1/blob", content=large)
        chunked = await client.post("/v1/blob", content=pieces())
    assert sized.json() == {"size": len(large)}
    assert upstream.seen[-2]["body"] == large
    assert _headers(upstream.seen[-2])[b"content-length"] == [str(len(large)).encode()]
    assert chunked.json() == {"size": 32}
    assert upstream.seen[-1]["body"] == b"piece-0;piece-1;piece-2;piece-3;"
    assert _headers(upstream.seen[-1])[b"transfer-encoding"] == [b"chunked"]


async def test_timeout_is_a_504_problem(proxy_gateway: ProxyGateway) -> None:
    async with proxy_gateway.client("api-keys.localhost") as client:
        answer = await client.post("/slow", content=b"{}")
    assert answer.status_code == 504
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 504
    assert problem["type"] == "urn:nv-boot:problem-details:gateway-timeout"
    assert problem["instance"] == "/slow"


async def test_embedded_services_stay_embedded(proxy_gateway: ProxyGateway) -> None:
    async with proxy_gateway.client("api.localhost") as client:
        answer = await client.get("/v2/nvcf/functions")
    assert answer.status_code == 401  # the embedded functions service, asking for a bearer
    async with proxy_gateway.client("sis.localhost") as client:
        assert (await client.get("/v1/clusters")).status_code == 404


class TestUpstreamDown:
    @pytest.fixture
    def upstream_urls(self) -> tuple[str, ...]:
        return (f"api-keys=http://127.0.0.1:{find_free_port()}",)

    async def test_unreachable_upstream_is_a_502_problem(self, proxy_gateway: ProxyGateway) -> None:
        async with proxy_gateway.client("api-keys.localhost") as client:
            answer = await client.get("/v1/keys")
        assert answer.status_code == 502
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 502
        assert problem["type"] == "urn:nv-boot:problem-details:bad-gateway"
        assert problem["instance"] == "/v1/keys"


def test_upstreams_setting_from_the_environment() -> None:
    settings = Settings.load(env={"CFGATE_UPSTREAMS": "api-keys=http://10.0.0.7:8000, tasks=http://h:1/p"})
    assert settings.upstream_map() == {"api-keys": "http://10.0.0.7:8000", "tasks": "http://h:1/p"}


@pytest.mark.parametrize(
    "value", ["invocation=http://h:1", "api-keys", "api-keys=https://h:1", "api-keys=ftp://h", "nope=http://h:1"]
)
def test_bad_upstream_setting_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="upstream must be"):
        Settings.load(env={"CFGATE_UPSTREAMS": value})
