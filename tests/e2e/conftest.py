"""A real gateway on loopback sockets (uvicorn + grpc.aio in this process) for end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.app import Gateway
from gateway.server import uvicorn_config
from tests.conftest import make_settings
from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import create_key
from tests.servers import find_free_port


@dataclass
class LiveGateway:
    gateway: Gateway
    base: str
    grpc_target: str
    admin_token: str

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Host": host}, timeout=30.0)

    async def create_deployed_function(self, *, max_request_concurrency: int = 10, **overrides: Any) -> tuple[str, str]:
        """Create and deploy a function (minInstances 1, each instance serving at most
        ``max_request_concurrency`` at once); returns (function id, version id)."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with self.client("api.localhost") as api:
            created = await api.post("/v2/nvcf/functions", json=function_body(**overrides), headers=headers)
            assert created.status_code == 200, created.text
            dto = created.json()["function"]
            url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
            body = deployment_body(maxRequestConcurrency=max_request_concurrency)
            deployed = await api.post(url, json=body, headers=headers)
            assert deployed.status_code == 200, deployed.text
        return dto["id"], dto["versionId"]

    async def api_key(self, **body: Any) -> str:
        from tests.gateway.helpers import key_body

        async with self.client("api-keys.localhost") as keys:
            return str((await create_key(keys, self.admin_token, key_body(**body)))["value"])


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """End-to-end tests exercise the invocation path; the store backends are covered elsewhere."""
    return f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}"


@pytest.fixture(params=["memory", "redis"])
def queue_redis(request: pytest.FixtureRequest) -> str | None:
    """The invocation queue the gateway runs on: in memory, or Redis Streams (``--redis``)."""
    if request.param == "memory":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
async def live_gateway(tmp_path: Path, database_url: str, queue_redis: str | None) -> AsyncIterator[LiveGateway]:
    port = find_free_port()
    settings = make_settings(
        tmp_path, database=database_url, port=port, worker_port=find_free_port(), redis=queue_redis
    )
    config = uvicorn_config(settings)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    gateway = config.app
    assert isinstance(gateway, Gateway)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"Host": "api-keys.localhost"}) as keys:
        token = (await keys.post("/v1/admin/keys")).json()["value"]
    try:
        yield LiveGateway(gateway, base, f"127.0.0.1:{gateway.worker_port}", token)
    finally:
        server.should_exit = True
        await task
