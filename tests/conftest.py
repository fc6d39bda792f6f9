"""Shared fixtures: a started gateway on each store backend, and clients that talk to it in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.settings import Settings

pytest_plugins = ["tests.plugins.servers"]

LOOPBACK_CLIENT = ("127.0.0.1", 50123)
# Documentation address (RFC 5737): only ever written into the ASGI scope, never contacted.
REMOTE_CLIENT = ("203.0.113.7", 40123)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "grpc_port": 0, "worker_port": 0}
    values.update(overrides)
    return Settings.load(values, env={})


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to start the gateway with other settings."""
    return {}


@pytest.fixture
async def gateway(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> AsyncIterator[Gateway]:
    gw = Gateway(make_settings(tmp_path, database=database_url, **settings_overrides))
    await gw.startup()
    try:
        yield gw
    finally:
        await gw.shutdown()


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def client_factory(gateway: Gateway) -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def make(host: str = "api-keys.localhost", client: tuple[str, int] = LOOPBACK_CLIENT) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=gateway, client=client)
        c = httpx.AsyncClient(transport=transport, base_url=f"http://{host}")
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


@pytest.fixture
def keys_client(client_factory: ClientFactory) -> httpx.AsyncClient:
    """A loopback client on the api-keys host."""
    return client_factory()


@pytest.fixture
def remote_keys_client(client_factory: ClientFactory) -> httpx.AsyncClient:
    """A non-loopback client on the api-keys host: the bootstrap door is closed to it."""
    return client_factory(client=REMOTE_CLIENT)
