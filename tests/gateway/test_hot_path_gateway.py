"""Host dispatch and the invocation hot path's credential checks, through the whole gateway."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import httpx
import pytest

from gateway.app import Gateway
from tests.conftest import ClientFactory
from tests.gateway.helpers import admin_token, assert_problem, create_key, key_body

FID = str(uuid.uuid4())
PEXEC = f"/v2/nvcf/pexec/functions/{FID}"


@pytest.fixture
def invocation(client_factory: ClientFactory) -> httpx.AsyncClient:
    return client_factory("invocation.localhost")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_invocation_problem(response: httpx.Response, status: int) -> None:
    assert_problem(response, status)
    assert response.headers["nvcf-status"] == "errored"
    uuid.UUID(response.headers["nvcf-reqid"])


async def test_health_on_any_host(client_factory: ClientFactory) -> None:
    processes = set()
    for host in ("localhost", "api-keys.localhost", "whatever.example"):
        response = await client_factory(host).get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body.keys() == {"status", "process"} and body["status"] == "UP"
        processes.add(body["process"])
    # One process, named by a random id (16 hex digits) that tells nothing else.
    (process,) = processes
    assert len(process) == 16 and int(process, 16) >= 0


@pytest.mark.parametrize("host", ["localhost", "nope.localhost", "x"])
async def test_unknown_or_absent_service_host_is_404(client_factory: ClientFactory, host: str) -> None:
    problem = assert_problem(await client_factory(host).get("/v1/keys"), 404, "not-found")
    assert problem["detail"] == "Unknown host"


@pytest.mark.parametrize(
    "host", ["api-keys.localhost", "API-KEYS.LOCALHOST:8080", "api-keys.10.0.0.5", "api-keys.10.0.0.5:80"]
)
async def test_service_label_in_front_of_any_address(client_factory: ClientFactory, host: str) -> None:
    response = await client_factory(host).get("/v1/services")
    assert response.status_code == 200


async def test_no_bearer_is_401(invocation: httpx.AsyncClient) -> None:
    response = await invocation.post(PEXEC, json={})
    assert_invocation_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("value", ["Basic abc", "Bearer", "Bearer a b"])
async def test_malformed_authorization_is_401(invocation: httpx.AsyncClient, value: str) -> None:
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers={"Authorization": value}), 401)


async def test_tampered_api_key_is_401(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    value = (await create_key(keys_client, await admin_token(keys_client)))["value"]
    tampered = value[:-1] + ("A" if value[-1] != "A" else "B")
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(tampered)), 401)


async def test_key_with_scope_passes_auth_and_reaches_function_lookup(
    keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient
) -> None:
    value = (await create_key(keys_client, await admin_token(keys_client)))["value"]
    for _ in range(2):  # second time from the credential cache
        problem = assert_problem(await invocation.post(PEXEC, json={}, headers=bearer(value)), 404)
        assert problem["detail"] == f"Function '{FID}' not found"


async def test_key_without_invoke_scope_is_403(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    body = key_body(scopes=["list_functions"])
    value = (await create_key(keys_client, await admin_token(keys_client), body))["value"]
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(value)), 403)


async def test_admin_jwt_without_invoke_scope_is_403(
    keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient
) -> None:
    token = await admin_token(keys_client)
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(token)), 403)


async def test_deleted_key_is_401_immediately(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    assert (await invocation.post(PEXEC, json={}, headers=bearer(key["value"]))).status_code == 404  # now cached
    deleted = await keys_client.delete(f"/v1/keys/{key['id']}", headers={"Authorization": f"Bearer {token}"})
    assert deleted.status_code == 204
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(key["value"])), 401)


async def test_expired_key_is_401(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    key = await create_key(keys_client, await admin_token(keys_client), key_body(expires=timedelta(seconds=1.5)))
    assert (await invocation.post(PEXEC, json={}, headers=bearer(key["value"]))).status_code == 404
    expiry = time.time() + 1.6
    while time.time() < expiry:
        await asyncio.sleep(0.1)
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(key["value"])), 401)


async def test_expired_jwt_is_401(gateway: Gateway, invocation: httpx.AsyncClient) -> None:
    token = gateway.runtime.issuer.mint("admin-issuer-proxy", ("invoke_function",), ttl_seconds=-60).value
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(token)), 401)


async def test_scope_change_takes_effect_at_once(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    assert (await invocation.post(PEXEC, json={}, headers=bearer(key["value"]))).status_code == 404
    narrowed = {"policies": [{"product": "nv-cloud-functions", "scopes": ["list_functions"], "resources": []}]}
    put = await keys_client.put(
        f"/v1/keys/{key['id']}/authorizations", json=narrowed, headers={"Authorization": f"Bearer {token}"}
    )
    assert put.status_code == 200
    assert_invocation_problem(await invocation.post(PEXEC, json={}, headers=bearer(key["value"])), 403)


async def test_invalid_function_uuid_is_400(keys_client: httpx.AsyncClient, invocation: httpx.AsyncClient) -> None:
    value = (await create_key(keys_client, await admin_token(keys_client)))["value"]
    response = await invocation.post("/v2/nvcf/pexec/functions/not-a-uuid", json={}, headers=bearer(value))
    assert_invocation_problem(response, 400)


async def test_direct_invocation_host_checks_credentials(
    keys_client: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    tlb = client_factory(f"{FID}.invocation.localhost")
    assert_invocation_problem(await tlb.post("/any/path?x=1", json={}), 401)
    value = (await create_key(keys_client, await admin_token(keys_client)))["value"]
    problem = assert_problem(await tlb.get("/any/path", headers=bearer(value)), 404)
    assert FID in problem["detail"]
