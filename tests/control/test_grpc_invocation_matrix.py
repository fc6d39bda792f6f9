"""Authorization matrix of the gRPC invocation port: credential × whose function.

Expectations come from the authority table (``Surface.GRPC_INVOCATION`` in
``gateway.auth.authority``) and ``invoke_function``: no bearer or a bad one → UNAUTHENTICATED; a
credential kind that reaches nothing there, or lacks ``invoke_function`` → PERMISSION_DENIED; a
key whose only function resource is another function → PERMISSION_DENIED on its own account's
function; another account's function, and an unknown one → NOT_FOUND; otherwise the call reaches
the function's worker (OK, with ``nvcf-reqid``). Every call is a real grpcio call on the
gateway's gRPC port, answered by a scripted worker over the real worker stream.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest

from gateway.app import Gateway
from gateway.auth.authority import CredentialKind, Reach, Surface, rule
from gateway.auth.scopes import FUNCTION_KEY_DEFAULT_SCOPES, TASK_KEY_DEFAULT_SCOPES, TASKS_PRODUCT
from invoker.grpc_frames import frame
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.conftest import LOOPBACK_CLIENT
from tests.control.helpers import create_function, deployment_body
from tests.control.matrix_cases import ALL_JWT_SCOPES, client_of
from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, key_body
from tests.grpc_invocation.calls import unary_method

SCOPES_BUT_INVOKE = tuple(s for s in ALL_JWT_SCOPES if s != "invoke_function")


@dataclass(frozen=True)
class Row:
    name: str
    kind: CredentialKind
    scopes: tuple[str, ...] = ()
    other_account: bool = False
    bound_elsewhere: bool = False
    malformed: bool = False


ROWS = [
    Row("no bearer", CredentialKind.NONE),
    Row("malformed bearer", CredentialKind.NONE, malformed=True),
    Row("admin JWT", CredentialKind.ACCOUNT_ADMIN, ALL_JWT_SCOPES),
    Row("admin JWT without invoke_function", CredentialKind.ACCOUNT_ADMIN, SCOPES_BUT_INVOKE),
    Row("function key", CredentialKind.FUNCTION_KEY, tuple(FUNCTION_KEY_DEFAULT_SCOPES)),
    Row("function key without invoke_function", CredentialKind.FUNCTION_KEY, ("list_functions",)),
    Row(
        "function key bound to another function",
        CredentialKind.FUNCTION_KEY,
        ("invoke_function",),
        bound_elsewhere=True,
    ),
    Row("task key", CredentialKind.TASK_KEY, tuple(TASK_KEY_DEFAULT_SCOPES)),
    Row("other account's admin JWT", CredentialKind.ACCOUNT_ADMIN, ALL_JWT_SCOPES, other_account=True),
    Row(
        "other account's function key",
        CredentialKind.FUNCTION_KEY,
        tuple(FUNCTION_KEY_DEFAULT_SCOPES),
        other_account=True,
    ),
]
TARGETS = ["own function", "other account's function", "unknown function"]


def expected(row: Row, target: str) -> grpc.StatusCode:
    if row.kind is CredentialKind.NONE:
        return grpc.StatusCode.UNAUTHENTICATED
    if rule(row.kind, Surface.GRPC_INVOCATION).reach is Reach.NOTHING or "invoke_function" not in row.scopes:
        return grpc.StatusCode.PERMISSION_DENIED
    mine = (target == "own function") != row.other_account  # the credential's own account's function
    if target == "unknown function" or not mine:
        return grpc.StatusCode.NOT_FOUND
    if row.bound_elsewhere:
        return grpc.StatusCode.PERMISSION_DENIED
    return grpc.StatusCode.OK


@dataclass
class World:
    gateway: Gateway
    owner: str
    other: str
    functions: dict[str, str]  # target → function id
    workers: list[ScriptedWorker]


async def _answer_ok(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    rid = invocation.request_id
    worker.send(
        pb.WorkerMessage(
            credits=1,
            starts=[pb.ResponseStart(request_id=rid, status=200)],
            chunks=[pb.ResponseChunk(request_id=rid, data=frame(b"ok"))],
            grpc_trailers=[pb.GrpcTrailers(request_id=rid, code=0)],
            ends=[pb.ResponseEnd(request_id=rid)],
        )
    )


@pytest.fixture
def database_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/store/cfgate.db"


@pytest.fixture
async def world(gateway: Gateway) -> AsyncIterator[World]:
    runtime = gateway.runtime
    suffix = uuid.uuid4().hex[:8]
    owner, other = f"grpc-owner-{suffix}", f"grpc-other-{suffix}"
    transport = httpx.ASGITransport(app=gateway, client=LOOPBACK_CLIENT)
    functions: dict[str, str] = {"unknown function": str(uuid.uuid4())}
    workers: list[ScriptedWorker] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://api.localhost") as api:
        for nca_id, target in ((owner, "own function"), (other, "other account's function")):
            await runtime.accounts.ensure(nca_id, nca_id, client_of(nca_id))
            token = runtime.issuer.mint(client_of(nca_id), ALL_JWT_SCOPES).value
            auth = {"Authorization": f"Bearer {token}"}
            dto = await create_function(api, auth, inferenceUrl="/grpc")
            url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
            assert (await api.post(url, json=deployment_body(), headers=auth)).status_code == 200
            worker = ScriptedWorker(f"127.0.0.1:{gateway.worker_port}", token, dto["id"], _answer_ok)
            await worker.start()
            workers.append(worker)
            functions[target] = dto["id"]
    try:
        yield World(gateway, owner, other, functions, workers)
    finally:
        for worker in workers:
            await worker.stop()


async def _bearer(world: World, row: Row) -> str | None:
    if row.kind is CredentialKind.NONE:
        return "nvapi-not-a-key" if row.malformed else None
    runtime = world.gateway.runtime
    nca_id = world.other if row.other_account else world.owner
    if row.kind is CredentialKind.ACCOUNT_ADMIN:
        return runtime.issuer.mint(client_of(nca_id), row.scopes).value
    token = runtime.issuer.mint(client_of(nca_id), ALL_JWT_SCOPES).value
    headers = {**KEY_HEADERS, "Authorization": f"Bearer {token}"}
    if row.kind is CredentialKind.TASK_KEY:
        body = key_body(scopes=list(row.scopes), resources=[{"id": "*", "type": "account-tasks"}])
        body["audience_service_ids"] = [TASKS_ISSUER]
        body["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
        headers.update({"Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER})
    else:
        resources = [{"type": "function", "id": f"{uuid.uuid4()}/*"}] if row.bound_elsewhere else None
        body = key_body(scopes=list(row.scopes), resources=resources)
    transport = httpx.ASGITransport(app=world.gateway, client=LOOPBACK_CLIENT)
    async with httpx.AsyncClient(transport=transport, base_url="http://api-keys.localhost") as keys:
        response = await keys.post("/v1/keys", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


async def test_every_credential_on_every_function(world: World) -> None:
    results: dict[tuple[str, str], grpc.StatusCode] = {}
    wanted: dict[tuple[str, str], grpc.StatusCode] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{world.gateway.grpc_port}") as channel:
        call = unary_method(channel, "/any.Service/Method")
        for row in ROWS:
            bearer = await _bearer(world, row)
            for target in TARGETS:
                metadata = [("function-id", world.functions[target]), ("nvcf-poll-seconds", "5")]
                if bearer is not None:
                    metadata.append(("authorization", f"Bearer {bearer}"))
                wanted[row.name, target] = expected(row, target)
                done = call(b"x", metadata=tuple(metadata), timeout=20)
                try:
                    answer = await done
                except grpc.aio.AioRpcError as exc:
                    results[row.name, target] = exc.code()
                    continue
                assert answer == b"ok"
                assert any(k == "nvcf-reqid" for k, _ in await done.initial_metadata())
                results[row.name, target] = grpc.StatusCode.OK
    assert results == wanted
