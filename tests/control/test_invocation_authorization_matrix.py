"""Authorization matrix of the invocation endpoints: pexec and exec, pinned or not, and their status
polls × every credential of ``matrix_cases.CREDENTIALS`` and a JWT holding ``invoke_function``.

Expected statuses come from the authority table (``Surface.INVOCATION``) and the one scope these
endpoints need, ``invoke_function`` (a JWT scope or an API-key scope): 401 without a bearer, 403
naming the scope without it, 404 for another account (the function, or the request id, is not
theirs), for a key bound to another function 403 on an invocation and 404 on a poll (a request
id is readable only by a key allowed on its function), else the owner's answer: 200 from the
worker (pexec), its envelope (exec), or 202 in-progress for a request still running (polls). A
refused call reaches no worker.

One gateway (SQLite, in process, its real gRPC worker endpoint) serves the module; each case
works in accounts of its own with a deployed function and a scripted worker.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from gateway.api import Call, Endpoint
from gateway.app import Gateway
from gateway.auth.authority import Surface, allows
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.conftest import LOOPBACK_CLIENT, make_settings
from tests.control.helpers import create_function, deployment_body
from tests.control.matrix_cases import ALL_JWT_SCOPES, CREDENTIALS, Credential, World, client_of
from tests.control.test_authorization_matrix import Site, credential_headers, mint
from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import assert_problem

_counter = itertools.count(1)
# The control-plane matrix's credentials, and a JWT of the owner's account holding the scope
# (the default admin JWT does not hold ``invoke_function``).
INVOCATION_CREDENTIALS = (*CREDENTIALS, Credential("JWT with scope", "jwt", lambda e: e.scopes))


async def _hot_path(call: Call) -> None:  # served by the hot path, never through an Endpoint handler
    raise AssertionError("not a control-plane endpoint")


def _endpoint(path: str, method: str = "POST") -> Endpoint:
    return Endpoint(method, path, _hot_path, "invocation", scopes=("invoke_function",))


PEXEC = "/v2/nvcf/pexec/functions/{functionId}"
EXEC = "/v2/nvcf/exec/functions/{functionId}"
ENDPOINTS = (
    _endpoint(PEXEC),
    _endpoint(PEXEC + "/versions/{functionVersionId}"),
    _endpoint("/v2/nvcf/pexec/status/{requestId}", "GET"),
    _endpoint(EXEC),
    _endpoint(EXEC + "/versions/{functionVersionId}"),
    _endpoint("/v2/nvcf/exec/status/{requestId}", "GET"),
)


def is_poll(endpoint: Endpoint) -> bool:
    return "/status/" in endpoint.path


def is_envelope(endpoint: Endpoint) -> bool:
    return "/exec/" in endpoint.path


def expected(endpoint: Endpoint, credential: Credential) -> int:
    if credential.kind == "none":
        return 401
    if not allows(credential.authority, Surface.INVOCATION, credential.scopes(endpoint), endpoint.scopes, False):
        return 403
    if credential.other_account:
        return 404
    if credential.bound:
        return 404 if is_poll(endpoint) else 403
    return 202 if is_poll(endpoint) else 200


@dataclass
class InvocationSite:
    site: Site
    invocation: httpx.AsyncClient
    workers: list[ScriptedWorker] = field(default_factory=list)
    refusals: dict[str, tuple[World, ScriptedWorker]] = field(default_factory=dict)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InvocationSite]:
    tmp: Path = tmp_path_factory.mktemp("invocation-matrix")
    gateway = Gateway(make_settings(tmp, database=f"sqlite:///{tmp / 'cfgate.db'}"))
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway, client=LOOPBACK_CLIENT)
    api = httpx.AsyncClient(transport=transport, base_url="http://api.localhost")
    keys = httpx.AsyncClient(transport=transport, base_url="http://api-keys.localhost")
    invocation = httpx.AsyncClient(transport=transport, base_url="http://invocation.localhost", timeout=30)
    served = InvocationSite(Site(gateway, api, keys), invocation)
    try:
        yield served
    finally:
        for worker in served.workers:
            await worker.stop()
        for client in (api, keys, invocation):
            await client.aclose()
        await gateway.shutdown()


async def answer(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    """``{"hold": true}`` is never answered (a request to poll); anything else gets ``{"ok": true}``."""
    if orjson.loads(invocation.body or b"null") != {"hold": True}:
        worker.answer(invocation.request_id, 200, b'{"ok": true}')


async def build_world(served: InvocationSite) -> tuple[World, ScriptedWorker]:
    """Owner and other accounts; the owner's deployed function, its worker, and a request it holds."""
    site = served.site
    world = World(suffix=f"inv-{next(_counter)}-{uuid.uuid4().hex[:8]}")
    runtime = site.gateway.runtime
    for nca_id in (world.owner, world.other):
        await runtime.accounts.ensure(nca_id, nca_id, client_of(nca_id))
    setup = mint(site, world.owner_client, ALL_JWT_SCOPES)
    dto = await create_function(site.api, setup)
    world.function_id, world.version_id = dto["id"], dto["versionId"]
    url = f"/v2/nvcf/deployments/functions/{world.function_id}/versions/{world.version_id}"
    deployed = await site.api.post(url, json=deployment_body(minInstances=0), headers=setup)
    assert deployed.status_code == 200, deployed.text
    token = setup["Authorization"].removeprefix("Bearer ")
    worker = ScriptedWorker(f"127.0.0.1:{site.gateway.worker_port}", token, world.function_id, answer)
    await worker.start()
    served.workers.append(worker)
    held = await served.invocation.post(
        f"/v2/nvcf/pexec/functions/{world.function_id}",
        json={"hold": True},
        headers={**setup, "NVCF-POLL-SECONDS": "1"},
    )
    assert held.status_code == 202, held.text
    world.request_id = held.headers["nvcf-reqid"]
    return world, worker


async def call(served: InvocationSite, endpoint: Endpoint, world: World, headers: dict[str, str]) -> httpx.Response:
    url = endpoint.path.format(
        functionId=world.function_id, functionVersionId=world.version_id, requestId=world.request_id
    )
    headers = {**headers, "NVCF-POLL-SECONDS": "1"}
    if endpoint.method == "GET":
        return await served.invocation.get(url, headers=headers)
    body: Any = {"requestBody": {"hello": "world"}} if is_envelope(endpoint) else {"hello": "world"}
    return await served.invocation.post(url, json=body, headers=headers)


def test_every_invocation_route_is_in_the_matrix() -> None:
    assert {(e.method, e.path) for e in ENDPOINTS} == {
        ("POST", PEXEC),
        ("POST", PEXEC + "/versions/{functionVersionId}"),
        ("GET", "/v2/nvcf/pexec/status/{requestId}"),
        ("POST", EXEC),
        ("POST", EXEC + "/versions/{functionVersionId}"),
        ("GET", "/v2/nvcf/exec/status/{requestId}"),
    }
    for endpoint in ENDPOINTS:
        assert {c.kind for c in INVOCATION_CREDENTIALS if expected(endpoint, c) in (200, 202)} == {"jwt", "key"}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("endpoint", "credential"),
    [pytest.param(e, c, id=f"{e.method} {e.path} x {c.name}") for e in ENDPOINTS for c in INVOCATION_CREDENTIALS],
)
async def test_matrix(site: InvocationSite, endpoint: Endpoint, credential: Credential) -> None:
    want = expected(endpoint, credential)
    if want in (200, 202):
        world, worker = await build_world(site)
    else:
        key = f"{endpoint.method} {endpoint.path}"
        if key not in site.refusals:
            site.refusals[key] = await build_world(site)
        world, worker = site.refusals[key]
    before = len(worker.received)
    headers = await credential_headers(site.site, world, credential, endpoint)
    response = await call(site, endpoint, world, headers)
    if want in (200, 202):
        assert response.status_code == want, response.text
        assert response.headers["nvcf-status"] == ("fulfilled" if want == 200 else "in-progress")
        request_id = response.headers["nvcf-reqid"]
        if is_envelope(endpoint):
            assert response.headers["content-type"] == "application/json"
            if want == 200:
                fulfilled = {"status": "fulfilled", "percentComplete": 100, "response": {"ok": True}}
                assert response.json() == {"reqId": request_id, **fulfilled}
            else:
                assert response.json() == {"reqId": world.request_id, "status": "in-progress"}
        elif want == 200:
            assert response.json() == {"ok": True}
        else:
            assert (request_id, response.content) == (world.request_id, b"")
        return
    names = {401: "unauthorized", 403: "forbidden", 404: "not-found"}
    problem = assert_problem(response, want, names[want])
    assert response.headers["nvcf-status"] == "errored"
    if want == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if want == 403 and not credential.bound:
        assert "'invoke_function'" in problem["detail"], problem["detail"]
    assert len(worker.received) == before, "a refused call reached the worker"
