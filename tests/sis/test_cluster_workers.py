"""End to end: a real gateway (uvicorn + grpc.aio), the real worker agent, a real echo container.

Register a cluster → a worker presenting its credential attaches (GPU and instance type from
the cluster) and serves; a bad or revoked credential is UNAUTHENTICATED; deleting the cluster
disconnects its worker, whose in-flight invocation is redelivered to another worker and answered;
a deployment to a GPU no cluster offers is a 400 problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.invocation.workers import CLUSTER_ID_KEY
from invoker.worker.agent import EXIT_REFUSED, WorkerAgent
from invoker.worker.config import WorkerConfig
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc
from tests.control.helpers import deployment_body, function_body
from tests.e2e.conftest import LiveGateway, live_gateway  # noqa: F401  (fixture)
from tests.e2e.test_invoke_scripted import wait_active
from tests.sis.helpers import DEFAULT_NCA, bearer, cluster_body
from tests.support.echo_server import EchoServer

WAIT = 20.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The store backends are covered by the contract tests; this module exercises the worker path."""
    return f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}"


@pytest.fixture
def queue_redis() -> str | None:
    """Cluster credentials do not depend on the queue: the memory queue only (e2e covers both)."""
    return None


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


class Agents:
    def __init__(self, live: LiveGateway, echo: EchoServer, tmp_path: Path) -> None:
        self.live, self.echo, self.tmp_path = live, echo, tmp_path
        self.running: list[tuple[WorkerAgent, asyncio.Task[int]]] = []

    def start(self, token: str, function_id: str, name: str, **overrides: Any) -> asyncio.Task[int]:
        config = WorkerConfig(
            gateway=self.live.grpc_target,
            token=token,
            function_id=function_id,
            inference_url=f"{self.echo.url}/echo",
            max_concurrency=2,
            work_dir=self.tmp_path / name,
            instance_id=name,
            grace_period=1.0,
            backoff_initial=0.05,
            backoff_max=0.2,
            **overrides,
        )
        agent = WorkerAgent(config)
        task = asyncio.ensure_future(agent.run())
        self.running.append((agent, task))
        return task

    async def stop_all(self) -> None:
        for agent, task in self.running:
            if not task.done():
                agent.request_stop()
                agent.request_stop()
                try:
                    async with asyncio.timeout(WAIT):
                        await task
                except TimeoutError:
                    task.cancel()


@pytest.fixture
async def agents(live_gateway: LiveGateway, echo: EchoServer, tmp_path: Path) -> AsyncIterator[Agents]:  # noqa: F811
    running = Agents(live_gateway, echo, tmp_path)
    yield running
    await running.stop_all()


async def register_cluster(live: LiveGateway, **overrides: Any) -> dict[str, Any]:
    async with live.client("sis.localhost") as sis:
        response = await sis.post(
            f"/v1/accounts/{DEFAULT_NCA}/clusters", json=cluster_body(**overrides), headers=bearer(live.admin_token)
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_until(predicate: Any, what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.02)


def sessions(live: LiveGateway, instance_id: str) -> list[Any]:
    dispatcher = live.gateway._workers.service.dispatcher  # type: ignore[union-attr]
    return dispatcher.sessions_where(lambda s: s.instance_id == instance_id)


async def register_raw(live: LiveGateway, credential: str, function_id: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(live.grpc_target) as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            await stub.Register(pb.RegisterRequest(credential=credential, function_id=function_id))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_cluster_worker_attaches_serves_and_is_disconnected_on_delete(
    live_gateway: LiveGateway,  # noqa: F811
    agents: Agents,
    echo: EchoServer,
) -> None:
    live = live_gateway
    cluster = await register_cluster(live)
    fid, vid = await live.create_deployed_function()
    credential = cluster["clusterCredential"]
    worker = agents.start(credential, fid, "cluster-worker")
    await wait_until(lambda: sessions(live, "cluster-worker"), "cluster worker attached")
    await wait_active(live, fid, vid)
    (session,) = sessions(live, "cluster-worker")
    assert session.version_id == vid
    assert session.grant.metadata[CLUSTER_ID_KEY] == cluster["clusterId"]
    assert (session.grant.metadata["gpu"], session.grant.metadata["instanceType"]) == ("H100", "NCP.GPU.H100_1x")
    assert session.grant.metadata["backend"] == "east" and session.grant.metadata["location"] == "us-east-1"

    key = await live.api_key()
    async with live.client("invocation.localhost") as client:
        served = await client.post(f"/v2/nvcf/pexec/functions/{fid}", json={"n": 1}, headers=bearer(key))
    assert served.status_code == 200, served.text
    assert served.json() == {"n": 1}

    # An invocation in flight at the cluster worker (the echo container holds it at a gate).
    async with live.client(f"{fid}.invocation.localhost") as client:
        pending = asyncio.ensure_future(client.post("/slow?seconds=120&gate=held", content=b"{}", headers=bearer(key)))
        await echo.wait_for(lambda stats: len(stats.active) == 1, WAIT)
        (request_id,) = echo.stats.active
        # A second worker (admin JWT) joins; it is idle while the cluster worker holds the request.
        agents.start(live.admin_token, fid, "jwt-worker")
        await wait_until(lambda: sessions(live, "jwt-worker"), "jwt worker attached")

        async with live.client("sis.localhost") as sis:
            url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster['clusterId']}"
            deleted = await sis.delete(url, headers=bearer(live.admin_token))
        assert deleted.status_code == 200

        # The cluster worker is gone, cannot come back (its credential is revoked) and exits 3.
        assert sessions(live, "cluster-worker") == []
        async with asyncio.timeout(WAIT):
            assert await worker == EXIT_REFUSED
        # Its in-flight request went to the other worker: the container sees it a second time.
        await echo.wait_for(lambda stats: stats.active == [request_id] and request_id in stats.disconnects, WAIT)
        echo.release("held")
        async with asyncio.timeout(WAIT):
            response = await pending
    assert response.status_code == 200, response.text
    assert response.json() == {"slept": 120.0}
    assert response.headers["nvcf-reqid"] == request_id
    assert [s.instance_id for s in sessions(live, "jwt-worker")] == ["jwt-worker"]


async def test_bad_and_revoked_credentials_are_unauthenticated(
    live_gateway: LiveGateway,  # noqa: F811
    agents: Agents,
) -> None:
    live = live_gateway
    cluster = await register_cluster(live)
    fid, _ = await live.create_deployed_function()
    forged = "nvcc-" + "A" * 43
    assert await register_raw(live, forged, fid) == grpc.StatusCode.UNAUTHENTICATED
    assert await register_raw(live, "nvcc-short", fid) == grpc.StatusCode.UNAUTHENTICATED
    assert await register_raw(live, cluster["clusterCredential"], fid) == grpc.StatusCode.OK
    # The real agent gives up on a refused credential (exit code 3) and never attaches.
    async with asyncio.timeout(WAIT):
        assert await agents.start(forged, fid, "forged") == EXIT_REFUSED
    assert sessions(live, "forged") == []
    async with live.client("sis.localhost") as sis:
        url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster['clusterId']}"
        assert (await sis.delete(url, headers=bearer(live.admin_token))).status_code == 200
    assert await register_raw(live, cluster["clusterCredential"], fid) == grpc.StatusCode.UNAUTHENTICATED


async def test_cluster_worker_placement_must_be_offered(live_gateway: LiveGateway) -> None:  # noqa: F811
    live = live_gateway
    cluster = await register_cluster(live, authorizedNCAIds=["partner"])
    fid = await deploy(live, bearer(live.admin_token), [spec("NCP.GPU.H100_1x"), spec("NCP.GPU.H100_2x")])
    credential = cluster["clusterCredential"]
    async with grpc.aio.insecure_channel(live.grpc_target) as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        chosen = await stub.Register(
            pb.RegisterRequest(credential=credential, function_id=fid, gpu="h100", instance_type="ncp.gpu.h100_2x")
        )
        assert (chosen.metadata["gpu"], chosen.metadata["instanceType"]) == ("H100", "NCP.GPU.H100_2x")
        assert chosen.metadata[CLUSTER_ID_KEY] == cluster["clusterId"]
        for request, code in [
            (pb.RegisterRequest(gpu="B200"), grpc.StatusCode.PERMISSION_DENIED),
            (pb.RegisterRequest(instance_type="NCP.GPU.H100_8x"), grpc.StatusCode.PERMISSION_DENIED),
            (pb.RegisterRequest(cluster_id="00000000-0000-4000-8000-000000000000"), grpc.StatusCode.UNAUTHENTICATED),
        ]:
            request.credential, request.function_id = credential, fid
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Register(request)
            assert refused.value.code() == code


async def test_deployment_to_a_gpu_no_cluster_offers_is_400(live_gateway: LiveGateway) -> None:  # noqa: F811
    live = live_gateway
    await register_cluster(live)
    headers = bearer(live.admin_token)
    async with live.client("api.localhost") as api:
        created = (await api.post("/v2/nvcf/functions", json=function_body(), headers=headers)).json()["function"]
        url = f"/v2/nvcf/deployments/functions/{created['id']}/versions/{created['versionId']}"
        refused = await api.post(url, json=deployment_body(gpu="B200", instanceType="B200_1x"), headers=headers)
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"].startswith("GPU 'B200' is not offered by any cluster")
        missing = await api.get(url, headers=headers)
        assert missing.status_code == 404


async def test_cluster_serves_another_account_only_where_it_placed_its_deployment(
    live_gateway: LiveGateway,  # noqa: F811
) -> None:
    live = live_gateway
    runtime = live.gateway.runtime
    await runtime.accounts.ensure("partner", "partner", "partner-client")
    partner = bearer(runtime.issuer.mint("partner-client", ("register_function", "deploy_function")).value)
    sharing = await register_cluster(live, authorizedNCAIds=["partner"])
    private = await register_cluster(live, clusterName="private")
    # The offer alone (authorizedNCAIds) places nothing: the partner deployed without naming it.
    unplaced = await deploy(live, partner, [spec("NCP.GPU.H100_1x")])
    assert await register_raw(live, sharing["clusterCredential"], unplaced) == grpc.StatusCode.PERMISSION_DENIED
    # Named by id in the partner's deployment: the partner consented.
    placed = await deploy(live, partner, [spec("NCP.GPU.H100_1x", clusters=[sharing["clusterId"]])])
    assert await register_raw(live, sharing["clusterCredential"], placed) == grpc.StatusCode.OK
    # Named, but never offered to the partner: no.
    named = await deploy(live, partner, [spec("NCP.GPU.H100_1x", clusters=[private["clusterId"]])])
    assert await register_raw(live, private["clusterCredential"], named) == grpc.StatusCode.PERMISSION_DENIED
    assert await register_raw(live, private["clusterCredential"], placed) == grpc.StatusCode.PERMISSION_DENIED


def spec(instance_type: str, **fields: Any) -> dict[str, Any]:
    return {**deployment_body(instanceType=instance_type)["deploymentSpecifications"][0], **fields}


async def deploy(live: LiveGateway, headers: dict[str, str], specs: list[dict[str, Any]]) -> str:
    """Create a function and deploy it with ``specs``; returns its id."""
    async with live.client("api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(), headers=headers)
        assert created.status_code == 200, created.text
        dto = created.json()["function"]
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        deployed = await api.post(url, json={"deploymentSpecifications": specs}, headers=headers)
        assert deployed.status_code == 200, deployed.text
    return str(dto["id"])


async def test_delete_drops_a_registration_whose_stream_is_not_open_yet(live_gateway: LiveGateway) -> None:  # noqa: F811
    live = live_gateway
    cluster = await register_cluster(live)
    fid, _ = await live.create_deployed_function()
    async with grpc.aio.insecure_channel(live.grpc_target) as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        registered = await stub.Register(pb.RegisterRequest(credential=cluster["clusterCredential"], function_id=fid))
        async with live.client("sis.localhost") as sis:
            url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster['clusterId']}"
            assert (await sis.delete(url, headers=bearer(live.admin_token))).status_code == 200
        call = stub.Work(iter([pb.WorkerMessage(credits=1)]), metadata=(("cfgate-session-id", registered.session_id),))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in call:
                pass
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
