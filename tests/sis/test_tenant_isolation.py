"""Issue 12 items 1, 2 and 6, as an attacker tried them: account A (the default, the operator's)
and accounts B and C admitted through a trusted issuer this test serves on loopback, on one real
gateway, with the real worker agent and real echo containers.

1. B registers a cluster with ``authorizedNCAIds: ["nvcf-default"]`` (A never agreed): its
   worker cannot register for A's function and gets none of A's invocations; A's worker serves
   them all.
2. Task workers: B's admin JWT, a trusted-issuer JWT whose subject maps to no account, and B's
   cluster credential (authorizing A) never get A's task or its secret; A's own worker does.
3. B's cluster (even one authorizing C) does not change which GPUs C may deploy or run tasks on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import orjson
import pytest

from gateway.services.tasks.models import TaskStatus
from invoker.worker.agent import EXIT_OK
from tests.control.helpers import deployment_body, function_body
from tests.e2e.conftest import LiveGateway
from tests.e2e.test_invoke_scripted import wait_active
from tests.sis.helpers import DEFAULT_NCA, bearer
from tests.sis.tenants import Tenants, tenant_gateway, tenants, trusted_issuer  # noqa: F401  (fixtures)
from tests.sis.test_cluster_workers import Agents, sessions, wait_until
from tests.sis.test_worker_authorization_matrix import departed
from tests.support.echo_server import EchoServer
from tests.tasks.test_worker_stream import ScriptedTaskWorker, hello

WAIT = 20.0


@pytest.fixture
async def echo_a() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def echo_b() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


async def test_a_cluster_authorizing_another_account_gets_none_of_its_invocations(
    tenants: Tenants,  # noqa: F811
    tenant_gateway: LiveGateway,  # noqa: F811
    echo_a: EchoServer,
    echo_b: EchoServer,
    tmp_path: Path,
) -> None:
    live = tenant_gateway
    b_admin = await tenants.account("acct-bravo", "bravo-admin")
    # B's say-so: accepted by SIS (it is B's cluster), but it is no consent of A's.
    b_cluster = await tenants.cluster(b_admin, "acct-bravo", "bravo-rack", authorizedNCAIds=[DEFAULT_NCA])
    fid, vid = await tenants.function(tenants.operator)
    assert await tenants.register(b_cluster["clusterCredential"], fid) == grpc.StatusCode.PERMISSION_DENIED

    b_agents, a_agents = Agents(live, echo_b, tmp_path / "b"), Agents(live, echo_a, tmp_path / "a")
    try:
        # The real agent keeps retrying a PERMISSION_DENIED registration (the function might be
        # deployed later); it stays up during the whole test and never attaches.
        b_worker = b_agents.start(b_cluster["clusterCredential"], fid, "bravo-worker")
        a_agents.start(tenants.operator, fid, "alpha-worker")
        await wait_until(lambda: sessions(live, "alpha-worker"), "A's worker attached")
        await wait_active(live, fid, vid)
        key = await live.api_key()
        async with live.client("invocation.localhost") as client:
            answers = await asyncio.gather(
                *(client.post(f"/v2/nvcf/pexec/functions/{fid}", json={"n": n}, headers=bearer(key)) for n in range(8))
            )
        assert sessions(live, "bravo-worker") == []
    finally:
        await a_agents.stop_all()
        await b_agents.stop_all()
    assert [a.status_code for a in answers] == [200] * 8
    assert [a.json() for a in answers] == [{"n": n} for n in range(8)]
    assert echo_a.stats.requests == 8  # every invocation reached A's container ...
    assert echo_b.stats.requests == 0  # ... none B's
    assert await b_worker == EXIT_OK  # stopped by the test, never refused for good nor attached


async def test_task_workers_of_other_accounts_never_get_a_task_or_its_secret(
    tenants: Tenants,  # noqa: F811
    tenant_gateway: LiveGateway,  # noqa: F811
) -> None:
    live = tenant_gateway
    assert live.gateway.tasks is not None
    scheduler = live.gateway.tasks.scheduler
    b_admin = await tenants.account("acct-bravo", "bravo-admin")
    b_cluster = await tenants.cluster(b_admin, "acct-bravo", "bravo-rack", authorizedNCAIds=[DEFAULT_NCA])
    task_id = await tenants.task(tenants.operator, "alpha-secret")

    unmapped = ScriptedTaskWorker(live.grpc_target, hello(tenants.issuer.mint("maps-to-no-account")))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await unmapped.read()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await unmapped.close()

    intruders = [
        ScriptedTaskWorker(live.grpc_target, hello(b_admin, instance_id="bravo-jwt")),
        ScriptedTaskWorker(live.grpc_target, hello(b_cluster["clusterCredential"], instance_id="bravo-cluster")),
    ]
    alpha: ScriptedTaskWorker | None = None
    try:
        for worker in intruders:
            assert (await worker.read()).welcome.session_id  # they may attach: for B's own tasks
        async with asyncio.timeout(WAIT):
            while len(scheduler.sessions) < len(intruders):
                await asyncio.sleep(0.01)
        await tenants.schedule()
        assert all(not s.running for s in scheduler.sessions.values())
        stored = await scheduler.repository.get(task_id)
        assert stored is not None and stored.status == TaskStatus.QUEUED

        # The task was runnable all along: A's own (the operator's) worker gets it, secret included.
        alpha = ScriptedTaskWorker(live.grpc_target, hello(tenants.operator, instance_id="alpha"))
        assert (await alpha.read()).welcome.session_id
        await tenants.schedule()
        (assignment,) = (await alpha.read()).assignments
        assert assignment.task_id == task_id and assignment.nca_id == DEFAULT_NCA
        assert orjson.loads(assignment.secrets_json) == {"HF_TOKEN": "alpha-secret"}
        assert all(not s.running for s in scheduler.sessions.values() if s.instance_id != "alpha")
    finally:
        for worker in [*intruders, *([alpha] if alpha else [])]:
            await worker.close()
        await departed(live)


async def test_one_accounts_cluster_never_changes_what_another_may_deploy(
    tenants: Tenants,  # noqa: F811
    tenant_gateway: LiveGateway,  # noqa: F811
) -> None:
    live = tenant_gateway
    b_admin = await tenants.account("acct-bravo", "bravo-admin")
    c_admin = await tenants.account("acct-charlie", "charlie-admin")
    await tenants.function(c_admin, gpu="B200", instanceType="B200_1x")  # no cluster anywhere yet
    await tenants.cluster(b_admin, "acct-bravo", "bravo-rack")
    await tenants.cluster(b_admin, "acct-bravo", "bravo-shared", authorizedNCAIds=["acct-charlie"])
    # Before: C's deployment of a GPU it deployed a moment ago was a 400, until B deleted its cluster.
    await tenants.function(c_admin, gpu="B200", instanceType="B200_1x")
    await tenants.task(c_admin, gpu="B200", instanceType="B200_1x")
    # B itself is bound by its clusters.
    async with live.client("api.localhost") as api:
        created = (await api.post("/v2/nvcf/functions", json=function_body(), headers=bearer(b_admin))).json()
        dto = created["function"]
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        refused = await api.post(url, json=deployment_body(gpu="B200", instanceType="B200_1x"), headers=bearer(b_admin))
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith("GPU 'B200' is not offered by any cluster available to the account")
