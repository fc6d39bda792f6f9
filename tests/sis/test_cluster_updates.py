"""Editing a cluster so that it may no longer run an account's work ends its workers' sessions.

B's cluster authorizes A (``authorizedNCAIds``) and A's function names it by id: both consents, so
B's real worker agent attaches and serves A's invocations. B then withdraws the offer with a PUT.
The worker was admitted under the old terms; the update must end its session (as a delete does),
and its re-registration under the new terms is refused, so none of A's work reaches it any more.
An edit that does not touch placement (the description) leaves the session alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.conftest import LiveGateway
from tests.e2e.test_invoke_scripted import wait_active
from tests.sis.helpers import DEFAULT_NCA, bearer
from tests.sis.tenants import Tenants, tenant_gateway, tenants, trusted_issuer  # noqa: F401  (fixtures)
from tests.sis.test_cluster_workers import Agents, sessions, wait_until
from tests.support.echo_server import EchoServer

WORKER = "bravo-worker"


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


async def update(live: LiveGateway, token: str, cluster: dict[str, Any], **fields: Any) -> dict[str, Any]:
    async with live.client("sis.localhost") as sis:
        url = f"/v1/accounts/{cluster['ncaId']}/clusters/{cluster['clusterId']}"
        response = await sis.put(url, json=fields, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def invoke(live: LiveGateway, fid: str, count: int) -> list[int]:
    key = await live.api_key()
    async with live.client("invocation.localhost") as client:
        answers = await asyncio.gather(
            *(client.post(f"/v2/nvcf/pexec/functions/{fid}", json={"n": n}, headers=bearer(key)) for n in range(count))
        )
    return [a.status_code for a in answers]


async def test_withdrawing_an_accounts_placement_disconnects_the_clusters_workers(
    tenants: Tenants,  # noqa: F811
    tenant_gateway: LiveGateway,  # noqa: F811
    echo: EchoServer,
    tmp_path: Path,
) -> None:
    live = tenant_gateway
    b_admin = await tenants.account("acct-bravo", "bravo-admin")
    cluster = await tenants.cluster(b_admin, "acct-bravo", "bravo-rack", authorizedNCAIds=[DEFAULT_NCA])
    credential = cluster["clusterCredential"]
    fid, vid = await tenants.function(tenants.operator, clusters=[cluster["clusterId"]])
    agents = Agents(live, echo, tmp_path)
    try:
        agents.start(credential, fid, WORKER)
        await wait_until(lambda: sessions(live, WORKER), "B's worker attached under both consents")
        await wait_active(live, fid, vid)
        assert await invoke(live, fid, 3) == [200] * 3
        assert echo.stats.requests == 3

        # Not a placement change: the session it had stays.
        attached = sessions(live, WORKER)
        await update(live, b_admin, cluster, clusterDescription="rack 4, row 2")
        await asyncio.sleep(0.3)
        assert sessions(live, WORKER) == attached

        # B withdraws its offer to A: the worker goes, and may not come back.
        updated = await update(live, b_admin, cluster, authorizedNCAIds=[])
        assert updated["authorizedNCAIds"] == []
        await wait_until(lambda: not sessions(live, WORKER), "B's worker disconnected by the update")
        assert await tenants.register(credential, fid) == grpc.StatusCode.PERMISSION_DENIED
        await asyncio.sleep(0.5)  # the agent retries every 0.05-0.2 s; each is refused
        assert sessions(live, WORKER) == []
    finally:
        await agents.stop_all()
    assert echo.stats.requests == 3
