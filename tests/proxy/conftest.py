"""A real upstream (uvicorn app on a free port) and a real gateway proxying to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.app import Gateway
from gateway.server import uvicorn_config
from tests.conftest import make_settings
from tests.servers import find_free_port

Message = MutableMapping[str, Any]


@dataclass
class Upstream:
    """Records what reached it; ``/stream`` sends its chunks one by one, each after ``gate``."""

    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.seen.append(
            {"method": scope["method"], "path": scope["path"], "query": scope["query_string"],
             "headers": scope["headers"], "body": body, "pieces": len([c for c in chunks if c])}
        )  # fmt: skip
        if scope["path"] == "/slow":
            await asyncio.sleep(5)
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for i in range(3):
                await send({"type": "http.response.body", "body": b"part-%d;" % i, "more_body": True})
                await self.gate.wait()
                self.gate.clear()
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"x-upstream", b"yes"),
            (b"connection", b"x-secret"),
            (b"x-secret", b"hop"),
            (b"keep-alive", b"timeout=5"),
        ]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"size": %d}' % len(body)})


async def _serve(config: uvicorn.Config) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = Upstream(port=find_free_port())
    config = uvicorn.Config(app, host="127.0.0.1", port=app.port, lifespan="off", log_level="warning")
    server, task = await _serve(config)
    try:
        yield app
    finally:
        server.should_exit = True
        await task


@dataclass
class ProxyGateway:
    base: str

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Host": host}, timeout=30.0)


@pytest.fixture
def upstream_urls(upstream: Upstream) -> tuple[str, ...]:
    """Override to point services elsewhere (a closed port, say)."""
    return (f"api-keys=http://127.0.0.1:{upstream.port}", f"tasks=http://127.0.0.1:{upstream.port}/prefix")


@pytest.fixture
async def proxy_gateway(tmp_path: Path, upstream_urls: tuple[str, ...]) -> AsyncIterator[ProxyGateway]:
    port = find_free_port()
    settings = make_settings(
        tmp_path, database=f"sqlite:///{tmp_path / 'cfgate.db'}", port=port, upstreams=upstream_urls,
        upstream_timeout_seconds=1,
    )  # fmt: skip
    config = uvicorn_config(settings)
    config.log_level = "warning"
    server, task = await _serve(config)
    assert isinstance(config.app, Gateway)
    try:
        yield ProxyGateway(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await task
