"""Authorization matrix of the control plane: every endpoint × every kind of credential.

The endpoints come from ``control_plane_endpoints()`` (one without an entry in
``matrix_cases.SPECS`` fails ``test_every_endpoint_is_in_the_matrix`` and its own cases), the
expected status from the endpoint's declared scopes (``matrix_cases.expected``): 401 without a
bearer (problem+json, ``WWW-Authenticate: Bearer``), 403 naming the missing scope (API keys on
JWT-only endpoints, task keys everywhere), 404 for another account's target, and for the owner
the success status, with a body checked against the response model and the target. A refused
call, and a successful GET, leaves every stored row of the accounts involved unchanged.

Credentials (``matrix_cases.CREDENTIALS``; test ids read ``<METHOD> <path> x <credential>``):
the default admin JWT scopes (what ``POST /v1/admin/keys`` mints), the operator JWT scopes of
``tests/control/conftest.py``, a function API key and a task API key with their default scopes and
resources (``POST /v1/keys``), a JWT and a functions API key holding every scope but the
endpoint's, a functions API key holding exactly the endpoint's scopes, a JWT and a functions
API key of another account holding every scope, and a functions API key with the endpoint's scopes
whose only resource is another function (issue 12 item 5).

Speed: 10 credentials × every endpoint is ~570 cases per backend, so one gateway per backend
serves the module (module-scoped fixtures and event loop) instead of the per-test ``gateway``
fixture. Each case works in accounts of its own (fresh ``nca_id``s and admin clients, JWTs minted
by the gateway's issuer for them, keys created with such a JWT), so cases never see each other's
resources, quotas or listings; the refused cases of one endpoint share one world (see ``Site``).
The full matrix runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import or_, select

from gateway.api import Endpoint
from gateway.app import Gateway
from gateway.auth.authority import Surface
from gateway.auth.scopes import FUNCTION_KEY_DEFAULT_SCOPES, TASK_KEY_DEFAULT_SCOPES, TASKS_PRODUCT
from gateway.services.functions.app import control_plane_endpoints
from gateway.store import schema
from tests.conftest import LOOPBACK_CLIENT, make_settings
from tests.control.helpers import create_function, deployment_body
from tests.control.matrix_cases import (
    ALL_JWT_SCOPES,
    ANY,
    ASSET_BODY,
    CREDENTIALS,
    SPECS,
    Caller,
    Credential,
    Expected,
    Spec,
    World,
    client_of,
    contract_scopes,
    endpoint_key,
    expected,
    path_params,
    registry_body,
    surface_of,
    telemetry_body,
)
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, assert_problem, create_key, key_body

ENDPOINTS = control_plane_endpoints()
_counter = itertools.count(1)


Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass
class Site:
    """The module's gateway and its clients (one per backend).

    ``refusals`` keeps, per endpoint, the world its refused cases share with the store snapshot
    taken when it was built: a refused call must leave it exactly so, hence the next refused case
    of the endpoint can use it too (a failing case drops it). Successful calls get a world each.
    """

    gateway: Gateway
    api: httpx.AsyncClient
    keys: httpx.AsyncClient
    refusals: dict[str, tuple[World, Snapshot]] = field(default_factory=dict)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def matrix_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'cfgate.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"matrix_{uuid.uuid4().hex[:12]}"
    dsn: str = server.create_database(name)
    try:
        yield dsn
    finally:
        if server.is_running():
            server.drop_database(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(matrix_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("matrix-data")
    gateway = Gateway(make_settings(tmp, database=matrix_database))
    await gateway.startup()
    transport = httpx.ASGITransport(app=gateway, client=LOOPBACK_CLIENT)
    api = httpx.AsyncClient(transport=transport, base_url="http://api.localhost")
    keys = httpx.AsyncClient(transport=transport, base_url="http://api-keys.localhost")
    try:
        yield Site(gateway, api, keys)
    finally:
        await api.aclose()
        await keys.aclose()
        await gateway.shutdown()


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def mint(site: Site, client_id: str, scopes: tuple[str, ...]) -> dict[str, str]:
    return bearer(site.gateway.runtime.issuer.mint(client_id, scopes).value)


async def create_api_key(
    site: Site, nca_id: str, scopes: tuple[str, ...], product: str, resources: list[dict[str, str]] | None = None
) -> dict[str, str]:
    """An API key of ``nca_id``, made through ``POST /v1/keys`` with an admin JWT of that account."""
    token = site.gateway.runtime.issuer.mint(client_of(nca_id), ALL_JWT_SCOPES).value
    if product != TASKS_PRODUCT:  # default resources: account-functions and authorized-functions
        body = key_body(scopes=list(scopes), resources=resources)
        return bearer((await create_key(site.keys, token, body))["value"])
    body = key_body(scopes=list(scopes), resources=[{"id": "*", "type": "account-tasks"}])
    body["audience_service_ids"] = [TASKS_ISSUER]
    body["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
    headers = {**KEY_HEADERS, "Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER, **bearer(token)}
    response = await site.keys.post("/v1/keys", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return bearer(response.json()["value"])


async def credential_headers(site: Site, world: World, credential: Credential, endpoint: Endpoint) -> dict[str, str]:
    if credential.kind == "none":
        return {}
    scopes = credential.scopes(endpoint)
    if credential.kind == "jwt":
        client = world.other_client if credential.other_account else world.owner_client
        return mint(site, client, scopes)
    # A bound key's only resource is a function that is not the world's.
    resources = [{"type": "function", "id": f"{uuid.uuid4()}/*"}] if credential.bound else None
    return await create_api_key(
        site, world.other if credential.other_account else world.owner, scopes, credential.product, resources
    )


# --- the world a case works on ----------------------------------------------------------------------------


async def build_world(site: Site, spec: Spec) -> World:
    """A fresh owner account and another account (partners too for sharing), and what ``spec.needs``."""
    world = World(suffix=f"{next(_counter)}-{uuid.uuid4().hex[:8]}")
    suffix, owner = world.suffix, world.owner
    runtime = site.gateway.runtime
    accounts = [owner, world.other]
    if "partners" in spec.needs:
        accounts += [world.partner_a, world.partner_b]
    if "doomed" in spec.needs:
        accounts.append(world.doomed_account)
    for nca_id in accounts:
        await runtime.accounts.ensure(nca_id, nca_id, client_of(nca_id))
    setup = mint(site, world.owner_client, ALL_JWT_SCOPES)
    needs = spec.needs
    api = site.api
    if "function" in needs:
        dto = await create_function(api, setup)
        world.function_id, world.version_id = dto["id"], dto["versionId"]
    if "deployment" in needs:
        url = f"/v2/nvcf/deployments/functions/{world.function_id}/versions/{world.version_id}"
        deployment = ok(await api.post(url, json=deployment_body(), headers=setup))["deployment"]
        world.deployment_id = deployment["deploymentId"]
        world.gpu_spec_id = deployment["deploymentSpecifications"][0]["gpuSpecificationId"]
    if "queued" in needs:
        world.request_id = str(uuid.uuid4())
        await runtime.queues.enqueue(world.version_id, world.function_id, world.request_id, b"{}")
    if "share" in needs:
        parties = {"authorizedParties": [{"ncaId": world.partner_a}]}
        base = f"/v2/nvcf/authorizations/functions/{world.function_id}"
        ok(await api.post(base, json=parties, headers=setup))
        ok(await api.post(f"{base}/versions/{world.version_id}", json=parties, headers=setup))
    if "telemetry" in needs:
        created = ok(await api.post("/v2/nvcf/telemetries", json=telemetry_body(f"tel-{suffix}"), headers=setup))
        world.telemetry_id = created["telemetry"]["telemetryId"]
    if "registry" in needs:
        body = registry_body(f"reg-{suffix}")
        created = ok(await api.post("/v2/nvcf/registry-credentials", json=body, headers=setup))
        world.registry_credential_id = created["registryCredential"]["registryCredentialId"]
    if "asset" in needs:
        created = ok(await api.post("/v2/nvcf/assets", json=ASSET_BODY, headers=setup))
        upload = {
            "Content-Type": ASSET_BODY["contentType"],
            "x-amz-meta-nvcf-asset-description": ASSET_BODY["description"],
        }
        response = await api.put(created["uploadUrl"], content=b"matrix bytes", headers=upload)
        assert response.status_code == 200, response.text
        world.asset_id = created["assetId"]
    if "extra_client" in needs:
        world.extra_client = f"extra-{suffix}"
        await runtime.accounts.associate(owner, world.extra_client)
    return world


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshot(site: Site, world: World) -> Snapshot:
    """Every stored row of the world's accounts (and of the accounts a case may create), API keys aside."""
    accounts = [world.owner, world.other, world.partner_a, world.partner_b, world.new_account, world.doomed_account]
    versions = select(schema.function_versions.c.version_id).where(schema.function_versions.c.nca_id.in_(accounts))
    functions = select(schema.function_versions.c.function_id).where(schema.function_versions.c.nca_id.in_(accounts))
    rows: Snapshot = {}
    async with site.gateway.runtime.store.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if table in (schema.schema_migrations, schema.api_keys):
                continue
            query = select(table)
            if table is schema.function_secrets:
                query = query.where(table.c.version_id.in_(versions))
            elif table is schema.function_authorizations:
                query = query.where(or_(table.c.function_id.in_(functions), table.c.nca_id.in_(accounts)))
            elif "nca_id" in table.c:
                query = query.where(table.c.nca_id.in_(accounts))
            rows[table.name] = sorted((tuple(row) for row in await conn.execute(query)), key=repr)
    return rows


# --- the matrix -------------------------------------------------------------------------------------------


def _cases() -> list[Any]:
    return [
        pytest.param(endpoint, credential, id=f"{endpoint.method} {endpoint.path} x {credential.name}")
        for endpoint in ENDPOINTS
        for credential in CREDENTIALS
    ]


def test_every_endpoint_is_in_the_matrix() -> None:
    keys = [endpoint_key(e) for e in ENDPOINTS]
    assert len(keys) == len(set(keys)), "duplicate method + path in control_plane_endpoints()"
    assert sorted(keys) == sorted(SPECS), {
        "missing from SPECS": sorted(set(keys) - set(SPECS)),
        "not endpoints any more": sorted(set(SPECS) - set(keys)),
    }
    for endpoint in ENDPOINTS:
        # Cross-account reach is the authority table's: only account administration has it.
        assert (SPECS[endpoint_key(endpoint)].other == ANY) is (surface_of(endpoint) is Surface.ACCOUNTS)
        assert endpoint.scopes, f"{endpoint_key(endpoint)} needs no credential"
        assert any(c.grants(endpoint) and not c.other_account for c in CREDENTIALS), endpoint_key(endpoint)


def test_declared_scopes_are_the_contracts() -> None:
    """The matrix derives its expectations from the declared scopes: those must be the reference's."""
    for endpoint in ENDPOINTS:
        declared = (tuple(sorted(endpoint.scopes)), endpoint.jwt_only)
        wanted, jwt_only = contract_scopes(endpoint.method, endpoint.path)
        assert declared == (tuple(sorted(wanted)), jwt_only), endpoint_key(endpoint)


def test_task_and_function_keys_carry_their_default_scopes() -> None:
    by_name = {c.name: c for c in CREDENTIALS}
    anything = ENDPOINTS[0]
    assert by_name["function key"].scopes(anything) == FUNCTION_KEY_DEFAULT_SCOPES
    assert by_name["task key"].scopes(anything) == TASK_KEY_DEFAULT_SCOPES


async def refusal_world(site: Site, endpoint: Endpoint, spec: Spec) -> tuple[World, Snapshot]:
    key = endpoint_key(endpoint)
    if key not in site.refusals:
        world = await build_world(site, spec)
        site.refusals[key] = (world, await snapshot(site, world))
    return site.refusals[key]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("endpoint", "credential"), _cases())
async def test_matrix(site: Site, endpoint: Endpoint, credential: Credential) -> None:
    spec = SPECS.get(endpoint_key(endpoint))
    assert spec is not None, f"{endpoint_key(endpoint)} has no entry in tests/control/matrix_cases.SPECS"
    want = expected(endpoint, spec, credential)
    if want.status in (401, 403, 404):
        world, before = await refusal_world(site, endpoint, spec)
        try:
            await refused(site, endpoint, spec, credential, world, before, want)
        except BaseException:
            site.refusals.pop(endpoint_key(endpoint), None)
            raise
    else:
        await succeeded(site, endpoint, spec, credential, want.status)


async def succeeded(site: Site, endpoint: Endpoint, spec: Spec, credential: Credential, status: int) -> None:
    world = await build_world(site, spec)
    headers = await credential_headers(site, world, credential, endpoint)
    before = await snapshot(site, world) if endpoint.method == "GET" else None
    response = await call(site, endpoint, spec, world, headers)
    assert response.status_code == status, response.text
    if status == 204:
        assert response.content == b""
        assert "content-type" not in response.headers
    else:
        assert response.headers["content-type"] == "application/json"
        payload = response.json()
        assert endpoint.response is not None
        endpoint.response.model_validate(payload)
        if spec.check is not None:
            caller = Caller(
                world.other if credential.other_account else world.owner, credential.kind == "jwt", credential.bound
            )
            spec.check(payload, world, caller)
    if before is not None:
        assert await snapshot(site, world) == before, "a read changed the store"


async def call(site: Site, endpoint: Endpoint, spec: Spec, world: World, headers: dict[str, str]) -> httpx.Response:
    url = endpoint.path.format(**path_params(endpoint, spec, world))
    body = spec.body(world) if spec.body is not None else None
    return await site.api.request(endpoint.method, url, params=spec.query, json=body, headers=headers)


async def refused(
    site: Site, endpoint: Endpoint, spec: Spec, credential: Credential, world: World, before: Snapshot, want: Expected
) -> None:
    status = want.status
    headers = await credential_headers(site, world, credential, endpoint)
    response = await call(site, endpoint, spec, world, headers)
    problem = assert_problem(response, status, {401: "unauthorized", 403: "forbidden", 404: "not-found"}[status])
    assert problem["instance"] == response.request.url.path
    if want.for_scope:  # refused for the scope, not for some later rule of the handler
        assert all(f"'{scope}'" in problem["detail"] for scope in endpoint.scopes), problem["detail"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert await snapshot(site, world) == before, "a refused call changed the store"
