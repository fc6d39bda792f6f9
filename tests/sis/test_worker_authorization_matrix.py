"""The gRPC worker endpoint × credential × account × consent, against ``WORKER_MATRIX``.

Every expectation comes from ``gateway.auth.worker_authority.WORKER_MATRIX``. Each case runs on
its own real gateway with three accounts: the operator's default account, the workload's owner
(``acct-bravo``) and another account (``acct-charlie``), both admitted through a trusted issuer
whose JWKS this test serves on loopback. The owner has two clusters, the other account one
cluster offered to the owner (``authorizedNCAIds``) and one not. A case deploys one function
or queues one task of the owner, placed as the case says, then:

* ``REGISTER``: a real gRPC ``Register`` for the owner's function; its status is the table's.
* ``TASK_STREAM``: a scripted task worker opens a real ``Tasks`` stream (hello with the
  credential, GPU H100 / NCP.GPU.H100_1x); the stream is refused with the table's status, or it
  is welcomed and, after a scheduling pass, is assigned the owner's task (with its secret) exactly
  when the table says it serves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import pytest

from gateway.auth.worker_authority import WORKER_MATRIX, Credential, Operation
from gateway.services.tasks.models import TaskStatus
from tests.e2e.conftest import LiveGateway
from tests.sis.tenants import Tenants, tenant_gateway, tenants, trusted_issuer  # noqa: F401  (fixtures)
from tests.tasks.test_worker_stream import ScriptedTaskWorker, hello

OWNER, OWNER_CLIENT = "acct-bravo", "bravo-admin"
OTHER, OTHER_CLIENT = "acct-charlie", "charlie-admin"
SECRET = "owner-only-secret"
WAIT = 15.0

CASES = [(operation, credential) for operation, row in WORKER_MATRIX.items() for credential in row]


def test_the_matrix_covers_every_operation_and_credential() -> None:
    assert set(WORKER_MATRIX) == set(Operation)
    for row in WORKER_MATRIX.values():
        assert set(row) == set(Credential)
    # Register has no "attached but idle": a refused worker never opens a Work stream.
    assert all(o.serves == (o.status == "OK") for o in WORKER_MATRIX[Operation.REGISTER].values())


@dataclass
class Case:
    credential: str
    placement: dict[str, Any]  # the owner's deployment / task placement (clusters, backend)


async def prepare(tenants: Tenants, kind: Credential) -> Case:  # noqa: F811
    owner = await tenants.account(OWNER, OWNER_CLIENT)
    other = await tenants.account(OTHER, OTHER_CLIENT)
    own = await tenants.cluster(owner, OWNER, "bravo-rack")
    spare = await tenants.cluster(owner, OWNER, "bravo-spare")
    offered = await tenants.cluster(other, OTHER, "charlie-shared", authorizedNCAIds=[OWNER])
    unoffered = await tenants.cluster(other, OTHER, "charlie-private")
    placed: dict[Credential, tuple[str, dict[str, Any]]] = {
        Credential.OPERATOR_JWT: (tenants.operator, {}),
        Credential.ADMIN_JWT_OWN: (owner, {}),
        Credential.ADMIN_JWT_OTHER: (other, {}),
        Credential.UNMAPPED_JWT: (tenants.issuer.mint("nobody-maps-here"), {}),
        Credential.CLUSTER_OWN: (own["clusterCredential"], {}),
        Credential.CLUSTER_OWN_UNTARGETED: (spare["clusterCredential"], {"clusters": [own["clusterId"]]}),
        Credential.CLUSTER_OTHER_OFFERED: (offered["clusterCredential"], {}),
        Credential.CLUSTER_OTHER_CONSENTED: (offered["clusterCredential"], {"clusters": [offered["clusterId"]]}),
        Credential.CLUSTER_OTHER_UNOFFERED: (
            unoffered["clusterCredential"],
            {"clusters": [own["clusterId"], unoffered["clusterId"]]},
        ),
        Credential.CLUSTER_REVOKED: (own["clusterCredential"], {}),
    }
    if kind is Credential.CLUSTER_REVOKED:
        await tenants.delete_cluster(owner, own)
    if kind in placed:
        return Case(*placed[kind])
    key = await tenants.api_key(other if kind is Credential.API_KEY_OTHER else owner)
    if kind is Credential.API_KEY_REVOKED:
        await tenants.delete_key(owner, key)
    return Case(str(key["value"]), {})


@pytest.mark.parametrize(("operation", "kind"), CASES, ids=[f"{o.value}-{c.value}" for o, c in CASES])
async def test_worker_endpoint_follows_the_matrix(
    tenants: Tenants,  # noqa: F811
    tenant_gateway: LiveGateway,  # noqa: F811
    operation: Operation,
    kind: Credential,
) -> None:
    expected = WORKER_MATRIX[operation][kind]
    case = await prepare(tenants, kind)
    owner = tenants.issuer.mint(OWNER_CLIENT)
    if operation is Operation.REGISTER:
        function_id, _ = await tenants.function(owner, **case.placement)
        assert (await tenants.register(case.credential, function_id)).name == expected.status
        return
    task_id = await tenants.task(owner, SECRET, **case.placement)
    worker = ScriptedTaskWorker(tenant_gateway.grpc_target, hello(case.credential))
    try:
        if expected.status != "OK":
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await worker.read()
            assert refused.value.code().name == expected.status
            return
        assert (await worker.read()).welcome.session_id
        assert tenant_gateway.gateway.tasks is not None
        scheduler = tenant_gateway.gateway.tasks.scheduler
        async with asyncio.timeout(WAIT):
            while not scheduler.sessions:  # the welcome is sent just before the session is attached
                await asyncio.sleep(0.01)
        await tenants.schedule()
        (session,) = scheduler.sessions.values()
        assert (task_id in session.running) == expected.serves
        if expected.serves:
            (assignment,) = (await worker.read()).assignments
            assert assignment.task_id == task_id and assignment.nca_id == OWNER
            assert orjson.loads(assignment.secrets_json) == {"HF_TOKEN": SECRET}
        else:
            stored = await scheduler.repository.get(task_id)
            assert stored is not None and stored.status == TaskStatus.QUEUED
    finally:
        await worker.close()
        await departed(tenant_gateway)


async def departed(live: LiveGateway) -> None:
    """Let the gateway record a closed stream's departure (a store write) before it shuts down."""
    tasks = live.gateway.tasks
    assert tasks is not None
    async with asyncio.timeout(WAIT):
        while tasks.scheduler.sessions:
            await asyncio.sleep(0.02)
