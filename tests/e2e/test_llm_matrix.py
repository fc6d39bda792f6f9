"""Authorization matrix of the LLM host: every endpoint × every kind of credential.

Expected statuses come from the authority table (``gateway.auth.authority``: the credential's
kind × ``Surface.LLM``) and the one scope the host needs (``invoke_function``): no bearer → 401,
a credential without the scope (a task key never has it for functions) → 403, an account
that may not see the function → 404 ``model_not_found`` (its ``/v1/models`` lists nothing of
it), a functions key whose resources name another function → 403 as on pexec, and the owner's
credentials → 200 from the container. Every refusal is an OpenAI error body.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
import pytest

from gateway.auth.authority import CredentialKind, Reach, Surface, allows, rule
from gateway.auth.scopes import ALL_SCOPES, FUNCTION_KEY_DEFAULT_SCOPES, TASK_KEY_DEFAULT_SCOPES, TASKS_PRODUCT
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import wait_active
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, create_key, key_body

MODEL = "m"
OTHER = "llm-matrix-other"
INVOKE = ("invoke_function",)
ENDPOINTS = (
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model}"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/responses"),
)


@pytest.fixture
def queue_redis() -> None:
    """The matrix is about credentials: the memory queue is enough (the path is the same)."""
    return None


@dataclass(frozen=True)
class Credential:
    name: str
    kind: CredentialKind
    scopes: tuple[str, ...]
    other_account: bool = False
    bound: bool = False  # a functions key whose only resource is another function


CREDENTIALS = (
    Credential("no bearer", CredentialKind.NONE, ()),
    Credential("operator JWT", CredentialKind.OPERATOR, INVOKE),
    Credential("account admin JWT", CredentialKind.ACCOUNT_ADMIN, ("invoke_function", "list_functions")),
    Credential("JWT without scope", CredentialKind.ACCOUNT_ADMIN, ("list_functions", "register_function")),
    Credential("function key", CredentialKind.FUNCTION_KEY, FUNCTION_KEY_DEFAULT_SCOPES),
    Credential("key without scope", CredentialKind.FUNCTION_KEY, tuple(s for s in ALL_SCOPES if s not in INVOKE)),
    Credential("task key", CredentialKind.TASK_KEY, TASK_KEY_DEFAULT_SCOPES),
    Credential("other account JWT", CredentialKind.ACCOUNT_ADMIN, INVOKE, other_account=True),
    Credential("other account key", CredentialKind.FUNCTION_KEY, INVOKE, other_account=True),
    Credential("key for another function", CredentialKind.FUNCTION_KEY, INVOKE, bound=True),
)


def expected(method: str, path: str, credential: Credential) -> tuple[int, str | None]:
    """(status, OpenAI error code) from the authority table; GET /v1/models lists, never 404s."""
    if credential.kind is CredentialKind.NONE:
        return 401, "invalid_api_key"
    if not allows(credential.kind, Surface.LLM, credential.scopes, INVOKE, False):
        return 403, "permission_denied"
    if method == "GET" and path == "/v1/models":
        return 200, None
    if credential.other_account and rule(credential.kind, Surface.LLM).reach is Reach.OWN:
        return 404, "model_not_found"
    if credential.bound:  # reading the model: it is not among the key's (as the listing says)
        return (404, "model_not_found") if method == "GET" else (403, "permission_denied")
    return 200, None


@dataclass
class World:
    live: LiveGateway
    function_id: str
    owner_account: str


@pytest.fixture
async def world(live_gateway: LiveGateway) -> AsyncIterator[World]:
    runtime = live_gateway.gateway.runtime
    await runtime.accounts.ensure(OTHER, OTHER, f"{OTHER}-client")
    fid, vid = await live_gateway.create_deployed_function(
        inferenceUrl="/v1/chat/completions",
        functionType="LLM",
        models=[{"name": MODEL, "llmConfig": {"uris": ["/v1"]}}],
    )

    async def reply(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        seen = orjson.loads(invocation.body)["model"]
        # ``seen`` is what the container got (``m``); the answer's own ``model`` goes back to the
        # client renamed (``<fid>/m``), so the container's view travels in another field.
        answer = {"object": "answer", "seen": seen, "model": MODEL}
        worker.answer(invocation.request_id, 200, orjson.dumps(answer))

    worker = ScriptedWorker(live_gateway.grpc_target, live_gateway.admin_token, fid, reply)
    await worker.start()
    try:
        await wait_active(live_gateway, fid, vid)
        yield World(live_gateway, fid, runtime.default_account.nca_id)
    finally:
        await worker.stop()


async def bearer(world: World, credential: Credential) -> dict[str, str]:
    runtime = world.live.gateway.runtime
    settings = world.live.gateway.settings
    if credential.kind is CredentialKind.NONE:
        return {}
    if credential.kind is CredentialKind.OPERATOR:
        return {"Authorization": f"Bearer {runtime.issuer.mint(settings.admin_client_id, credential.scopes).value}"}
    account = OTHER if credential.other_account else world.owner_account
    client = f"{OTHER}-client" if credential.other_account else settings.admin_client_id
    if credential.kind is CredentialKind.ACCOUNT_ADMIN:
        if not credential.other_account:  # an account admin of the owner's account: a second client of it
            client = f"admin-{uuid.uuid4().hex[:8]}"
            await runtime.accounts.associate(account, client)
        return {"Authorization": f"Bearer {runtime.issuer.mint(client, credential.scopes).value}"}
    minting = runtime.issuer.mint(client, (*ALL_SCOPES, "list_accounts")).value
    async with world.live.client("api-keys.localhost") as keys:
        if credential.kind is CredentialKind.TASK_KEY:
            body = key_body(scopes=list(credential.scopes), resources=[{"id": "*", "type": "account-tasks"}])
            body["audience_service_ids"] = [TASKS_ISSUER]
            body["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
            headers = {**KEY_HEADERS, "Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER}
            response = await keys.post("/v1/keys", json=body, headers={**headers, "Authorization": f"Bearer {minting}"})
            assert response.status_code == 200, response.text
            value = response.json()["value"]
        else:
            resources = [{"type": "function", "id": f"{uuid.uuid4()}/*"}] if credential.bound else None
            value = (await create_key(keys, minting, key_body(scopes=list(credential.scopes), resources=resources)))[
                "value"
            ]
    return {"Authorization": f"Bearer {value}"}


@pytest.mark.parametrize("host", ["llm.invocation.localhost", "llm.localhost"])
async def test_llm_matrix(world: World, host: str) -> None:
    model = f"{world.function_id}/{MODEL}"
    failures = []
    async with world.live.client(host) as http:
        for credential in CREDENTIALS:
            headers = await bearer(world, credential)
            for method, path in ENDPOINTS:
                body = None if method == "GET" else {"model": model, "input": "x", "messages": []}
                response = await http.request(method, path.format(model=model), json=body, headers=headers)
                status, code = expected(method, path, credential)
                got = response.json()
                if response.status_code != status:
                    failures.append(f"{method} {path} x {credential.name}: {response.status_code} {response.text}")
                elif code is not None and got.get("error", {}).get("code") != code:
                    failures.append(f"{method} {path} x {credential.name}: body {got}")
                elif status == 200 and method == "POST" and got != {"object": "answer", "seen": MODEL, "model": model}:
                    failures.append(f"{method} {path} x {credential.name}: container saw {got}")
                elif status == 200 and path == "/v1/models/{model}" and got["id"] != model:
                    failures.append(f"{method} {path} x {credential.name}: read {got}")
                elif status == 200 and path == "/v1/models":
                    listed = [m["id"] for m in got["data"]]
                    visible = not credential.other_account and not credential.bound
                    if (model in listed) is not visible:
                        failures.append(f"GET /v1/models x {credential.name}: listed {listed}")
    assert not failures, "\n".join(failures)


def test_the_llm_surface_follows_invocation_in_the_table() -> None:
    for kind in CredentialKind:
        assert rule(kind, Surface.LLM) == rule(kind, Surface.INVOCATION), kind
