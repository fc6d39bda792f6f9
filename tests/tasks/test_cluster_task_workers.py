"""Task workers holding a SIS cluster credential: what they may run, and what deleting the cluster does."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest

from gateway.app import Gateway
from gateway.services.tasks.scheduler import TaskScheduler
from tests.conftest import ClientFactory
from tests.control.conftest import OTHER_CLIENT_ID, OTHER_NCA_ID
from tests.sis.helpers import DEFAULT_NCA, cluster_body, gpu
from tests.tasks.conftest import Headers, bearer, create_task, task_body
from tests.tasks.test_worker_stream import WAIT, ScriptedTaskWorker, attach, hello, target, wait_status, workers

__all__ = ["workers"]  # the fixture, imported for this module's tests


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"task_tick_ms": 100}


def scheduler(gateway: Gateway) -> TaskScheduler:
    assert gateway.tasks is not None
    return gateway.tasks.scheduler


async def register_cluster(client_factory: ClientFactory, admin_jwt: str, **overrides: Any) -> dict[str, Any]:
    sis = client_factory("sis.localhost")
    response = await sis.post(
        f"/v1/accounts/{DEFAULT_NCA}/clusters", json=cluster_body(**overrides), headers=bearer(admin_jwt)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_cluster_worker_runs_its_accounts_tasks_and_is_ended_when_the_cluster_goes(
    gateway: Gateway,
    workers: list[ScriptedTaskWorker],
    admin_jwt: str,
    client_factory: ClientFactory,
    tasks: httpx.AsyncClient,
    task_key: Headers,
) -> None:
    cluster = await register_cluster(client_factory, admin_jwt)
    worker = await attach(gateway, workers, cluster["clusterCredential"], instance_id="rack-4")
    (session,) = scheduler(gateway).sessions.values()
    assert session.grant.cluster_id == cluster["clusterId"]
    assert session.grant.nca_id == DEFAULT_NCA and session.grant.cluster is not None

    dto = await create_task(tasks, task_key)
    (assignment,) = (await worker.read()).assignments
    assert assignment.task_id == dto["id"]
    launched = await wait_status(tasks, task_key, dto["id"], "LAUNCHED")
    assert launched["instances"][0]["instanceId"] == "rack-4"

    sis = client_factory("sis.localhost")
    deleted = await sis.delete(f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster['clusterId']}", headers=bearer(admin_jwt))
    assert deleted.status_code == 200
    async with asyncio.timeout(WAIT):
        assert await worker.call.read() is grpc.aio.EOF  # the gateway ended the stream
    errored = await wait_status(tasks, task_key, dto["id"], "ERRORED")
    assert errored["id"] == dto["id"]
    assert scheduler(gateway).sessions == {}
    # The revoked credential cannot attach again.
    again = ScriptedTaskWorker(target(gateway), hello(cluster["clusterCredential"]))
    workers.append(again)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await again.read()
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"gpu": "B200"}, grpc.StatusCode.PERMISSION_DENIED),  # a GPU the cluster does not offer
        ({"instance_type": "NCP.GPU.B200_8x"}, grpc.StatusCode.PERMISSION_DENIED),
        ({"cluster_id": "00000000-0000-4000-8000-000000000000"}, grpc.StatusCode.UNAUTHENTICATED),
        ({"credential": "nvcc-" + "A" * 43}, grpc.StatusCode.UNAUTHENTICATED),  # well formed, never issued
    ],
)
async def test_a_cluster_worker_must_match_its_cluster(
    gateway: Gateway,
    workers: list[ScriptedTaskWorker],
    admin_jwt: str,
    client_factory: ClientFactory,
    fields: dict[str, str],
    code: grpc.StatusCode,
) -> None:
    cluster = await register_cluster(client_factory, admin_jwt)
    worker = ScriptedTaskWorker(target(gateway), hello(cluster["clusterCredential"], **fields))
    workers.append(worker)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await worker.read()
    assert refused.value.code() == code
    assert scheduler(gateway).sessions == {}


async def test_once_a_cluster_exists_a_task_needs_a_gpu_it_offers(
    gateway: Gateway, admin_jwt: str, client_factory: ClientFactory, tasks: httpx.AsyncClient, task_key: Headers
) -> None:
    before = await tasks.post(
        "/v1/nvct/tasks", json=task_body(gpuSpecification={"gpu": "B200", "instanceType": "x"}), headers=task_key
    )
    assert before.status_code == 200  # no cluster anywhere: any GPU name is accepted
    await register_cluster(client_factory, admin_jwt)
    refused = await tasks.post(
        "/v1/nvct/tasks", json=task_body(gpuSpecification={"gpu": "B200", "instanceType": "x"}), headers=task_key
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "B200" in refused.json()["detail"]
    offered = await tasks.post("/v1/nvct/tasks", json=task_body(), headers=task_key)
    assert offered.status_code == 200


async def test_a_jwt_worker_cannot_claim_another_accounts_cluster(
    gateway: Gateway,
    workers: list[ScriptedTaskWorker],
    client_factory: ClientFactory,
    other_task_jwt: Headers,
) -> None:
    """To run as a registered cluster of another account, a worker presents that cluster's credential."""
    other_admin = gateway.runtime.issuer.mint(OTHER_CLIENT_ID, ("cluster-management",)).value
    sis = client_factory("sis.localhost")
    theirs = await sis.post(
        f"/v1/accounts/{OTHER_NCA_ID}/clusters", json=cluster_body(OTHER_NCA_ID), headers=bearer(other_admin)
    )
    assert theirs.status_code == 200, theirs.text
    operator = gateway.runtime.issuer.mint(gateway.settings.admin_client_id, ("cluster-management",)).value
    claiming = ScriptedTaskWorker(target(gateway), hello(operator, cluster_id=theirs.json()["clusterId"]))
    workers.append(claiming)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await claiming.read()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Its own account's admin may declare it (the cluster is that account's).
    own = await attach(gateway, workers, other_admin, cluster_id=theirs.json()["clusterId"])
    assert own.received[0].welcome.session_id


@pytest.mark.parametrize(
    ("task_gpu", "worker_gpu"),
    [
        ({"gpu": "h100", "instanceType": "ncp.gpu.h100_1x"}, {}),
        ({}, {"gpu": "h100", "instance_type": "Ncp.Gpu.H100_1X"}),
    ],
)
async def test_gpu_and_instance_type_names_match_whatever_their_case(
    gateway: Gateway,
    workers: list[ScriptedTaskWorker],
    admin_jwt: str,
    client_factory: ClientFactory,
    tasks: httpx.AsyncClient,
    task_key: Headers,
    task_gpu: dict[str, str],
    worker_gpu: dict[str, str],
) -> None:
    # Validation and worker admission read cluster GPU names case-insensitively (``offers``,
    # ``placement``); the scheduler must too, or such a task is accepted and then never runs.
    cluster = await register_cluster(client_factory, admin_jwt)
    worker = await attach(gateway, workers, cluster["clusterCredential"], **worker_gpu)
    spec = {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x", **task_gpu}
    dto = await create_task(tasks, task_key, gpuSpecification=spec)
    async with asyncio.timeout(WAIT):
        (assignment,) = (await worker.read()).assignments
    assert assignment.task_id == dto["id"]


async def test_a_cluster_update_withdrawing_its_gpu_ends_its_task_workers(
    gateway: Gateway, workers: list[ScriptedTaskWorker], admin_jwt: str, client_factory: ClientFactory
) -> None:
    cluster = await register_cluster(client_factory, admin_jwt)
    worker = await attach(gateway, workers, cluster["clusterCredential"], instance_id="rack-4")
    sis = client_factory("sis.localhost")
    url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster['clusterId']}"
    described = await sis.put(url, json={"clusterDescription": "row 2"}, headers=bearer(admin_jwt))
    assert described.status_code == 200, described.text
    assert len(scheduler(gateway).sessions) == 1  # not a placement change: the session stays
    updated = await sis.put(url, json={"gpus": [gpu("B200", "NCP.GPU.B200_8x")]}, headers=bearer(admin_jwt))
    assert updated.status_code == 200, updated.text
    async with asyncio.timeout(WAIT):
        assert await worker.call.read() is grpc.aio.EOF  # admitted for H100, which the cluster no longer offers
    assert scheduler(gateway).sessions == {}
    again = ScriptedTaskWorker(target(gateway), hello(cluster["clusterCredential"]))
    workers.append(again)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await again.read()
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
