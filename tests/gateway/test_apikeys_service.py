"""The API Keys service: create/list/get/delete, authorizations, introspection, evaluation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.store.schema import api_keys
from tests.conftest import REMOTE_CLIENT, ClientFactory
from tests.gateway.helpers import (
    FUNCTIONS_ISSUER,
    KEY_HEADERS,
    OWNER,
    TASKS_ISSUER,
    admin_token,
    assert_problem,
    create_key,
    key_body,
)

KEYDTO_FIELDS = {
    "id",
    "value",
    "status",
    "owner_type",
    "owner_id",
    "issuer_service_id",
    "audience_service_ids",
    "description",
    "created_at",
    "expires_at",
    "authorizations",
}


def auth(token: str, **extra: str) -> dict[str, str]:
    return {**KEY_HEADERS, "Authorization": f"Bearer {token}", **extra}


async def test_docs_scoped_key_request_returns_nvapi_key(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    body = key_body()
    response = await keys_client.post("/v1/keys", json=body, headers=auth(token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    dto = response.json()
    assert set(dto) == KEYDTO_FIELDS
    assert dto["value"].startswith("nvapi-") and len(dto["value"]) == 6 + 43 + 21
    assert dto["status"] == "ACTIVE"
    assert dto["owner_id"] == OWNER
    assert dto["issuer_service_id"] == FUNCTIONS_ISSUER
    assert dto["audience_service_ids"] == [FUNCTIONS_ISSUER]
    assert dto["description"] == "invocation key"
    assert dto["created_at"].endswith("Z") and dto["expires_at"] == body["expires_at"]
    policy = dto["authorizations"]["policies"][0]
    assert policy["scopes"] == body["authorizations"]["policies"][0]["scopes"]
    assert policy["resources"] == body["authorizations"]["policies"][0]["resources"]
    uuid.UUID(dto["id"])


async def test_store_holds_no_plaintext_key(gateway: Gateway, keys_client: httpx.AsyncClient, tmp_path: Path) -> None:
    token = await admin_token(keys_client)
    value = (await create_key(keys_client, token))["value"]
    async with gateway.runtime.store.engine.connect() as conn:
        rows = (await conn.execute(select(api_keys))).all()
    assert len(rows) == 1
    assert all(value not in str(column) for column in rows[0])
    assert rows[0].key_hash != value and len(rows[0].key_hash) == 64
    if gateway.runtime.store.dialect == "sqlite":
        for file in (tmp_path / "store").iterdir():
            assert value.encode() not in file.read_bytes(), file


async def test_list_get_delete_round_trip(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    first = await create_key(keys_client, token)
    second = await create_key(keys_client, token, key_body(description="second key"))
    listed = await keys_client.get("/v1/keys", headers=auth(token))
    assert listed.status_code == 200
    keys = listed.json()["keys"]
    assert [k["id"] for k in keys] == [first["id"], second["id"]]
    assert all("value" not in k and "authorizations" not in k for k in keys)
    got = await keys_client.get(f"/v1/keys/{first['id']}", headers=auth(token))
    assert got.status_code == 200
    assert set(got.json()) == KEYDTO_FIELDS - {"value"}
    deleted = await keys_client.delete(f"/v1/keys/{first['id']}", headers=auth(token))
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await keys_client.get(f"/v1/keys/{first['id']}", headers=auth(token)), 404, "not-found")
    assert_problem(await keys_client.delete(f"/v1/keys/{first['id']}", headers=auth(token)), 404)
    assert await gateway.runtime.api_keys.count() == 1


async def test_listing_is_per_issuer_and_owner(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    await create_key(keys_client, token)
    other_owner = await keys_client.get("/v1/keys", headers=auth(token, **{"Key-Owner-Id": "someone@else"}))
    assert other_owner.json() == {"keys": []}
    tasks = await keys_client.get("/v1/keys", headers=auth(token, **{"Key-Issuer-Id": TASKS_ISSUER}))
    assert tasks.json() == {"keys": []}


async def test_delete_under_wrong_issuer_is_404_as_cli_expects(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    response = await keys_client.delete(f"/v1/keys/{key['id']}", headers=auth(token, **{"Key-Issuer-Id": TASKS_ISSUER}))
    assert_problem(response, 404)


async def test_bare_delete_from_loopback_works_like_nvcf_cli(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    response = await keys_client.delete(f"/v1/keys/{key['id']}", headers=KEY_HEADERS)
    assert response.status_code == 204


async def test_bearerless_create_through_bootstrap_door(keys_client: httpx.AsyncClient) -> None:
    dto = await create_key(keys_client, None)
    assert dto["value"].startswith("nvapi-")


async def test_bearerless_calls_from_remote_are_401(gateway: Gateway, client_factory: ClientFactory) -> None:
    remote = client_factory(client=REMOTE_CLIENT)
    assert_problem(await remote.post("/v1/keys", json=key_body(), headers=KEY_HEADERS), 401, "unauthorized")
    response = await remote.get("/v1/keys", headers=KEY_HEADERS)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(await remote.delete(f"/v1/keys/{uuid.uuid4()}", headers=KEY_HEADERS), 401)
    assert await gateway.runtime.api_keys.count() == 0


async def test_remote_with_admin_jwt_may_manage_keys(
    keys_client: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    token = await admin_token(keys_client)
    remote = client_factory(client=REMOTE_CLIENT)
    dto = await create_key(remote, token)
    assert (await remote.get(f"/v1/keys/{dto['id']}", headers=auth(token))).status_code == 200


async def test_api_key_cannot_manage_keys(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    value = (await create_key(keys_client, token))["value"]
    response = await keys_client.post("/v1/keys", json=key_body(), headers=auth(value))
    assert_problem(response, 403, "forbidden")
    assert await gateway.runtime.api_keys.count() == 1


async def test_jwt_without_admin_scope_is_403(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    weak = gateway.runtime.issuer.mint("admin-issuer-proxy", ("invoke_function",)).value
    assert_problem(await keys_client.post("/v1/keys", json=key_body(), headers=auth(weak)), 403)
    assert await gateway.runtime.api_keys.count() == 0


async def test_jwt_of_unknown_client_is_404_unknown_client_id(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    stranger = gateway.runtime.issuer.mint("nobody", ("register_function",)).value
    body = assert_problem(await keys_client.post("/v1/keys", json=key_body(), headers=auth(stranger)), 404)
    assert body["detail"] == "Unknown client_id"


@pytest.mark.parametrize("credential", ["garbage", "a.b.c", "nvapi-" + "x" * 64])
async def test_bad_bearer_is_401(gateway: Gateway, keys_client: httpx.AsyncClient, credential: str) -> None:
    assert_problem(await keys_client.post("/v1/keys", json=key_body(), headers=auth(credential)), 401)
    assert await gateway.runtime.api_keys.count() == 0


async def test_tampered_jwt_is_401(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    assert_problem(await keys_client.get("/v1/keys", headers=auth(tampered)), 401)


async def test_put_authorizations_replaces_policies(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    fid = str(uuid.uuid4())
    new = {
        "policies": [
            {
                "product": "nv-cloud-functions",
                "scopes": ["invoke_function"],
                "resources": [{"type": "function", "id": f"{fid}/*"}],
            }
        ]
    }
    response = await keys_client.put(f"/v1/keys/{key['id']}/authorizations", json=new, headers=auth(token))
    assert response.status_code == 200
    assert response.json()["authorizations"] == new
    got = await keys_client.get(f"/v1/keys/{key['id']}", headers=auth(token))
    assert got.json()["authorizations"] == new


async def test_introspect(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    body = {"audience_service_id": FUNCTIONS_ISSUER, "key": key["value"]}
    response = await keys_client.post("/v1/introspect", json=body, headers=auth(token))
    assert response.status_code == 200
    assert response.json()["id"] == key["id"]
    assert "value" not in response.json()
    unknown = await keys_client.post("/v1/introspect", json={"key": "nvapi-nope"})
    problem = assert_problem(unknown, 404, "not-found")
    assert problem["detail"] == "Key not found." and problem["instance"] == "/v1/introspect"
    wrong_audience = await keys_client.post(
        "/v1/introspect", json={"key": key["value"], "audience_service_id": TASKS_ISSUER}
    )
    assert_problem(wrong_audience, 404)


async def test_evaluation_as_nvcf_calls_it(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    url = "/v1/namespaces/nvcf/evaluations/apikey.allow"
    response = await keys_client.post(url, json={"input": {"apiKey": key["value"]}})
    assert response.status_code == 200
    data = response.json()
    assert data["namespace"] == "nvcf" and data["rule_name"] == "apikey.allow"
    result = data["result"]
    assert result["allowed"] is True and result["ncaId"] == "nvcf-default" and result["ownerId"] == OWNER
    assert result["policy"]["scopes"] == [
        "invoke_function",
        "list_functions",
        "queue_details",
        "list_functions_details",
    ]
    denied = (await keys_client.post(url, json={"input": {"apiKey": "nvapi-unknown"}})).json()["result"]
    assert denied == {"allowed": False, "ncaId": None, "ownerId": None, "policy": None}
    tasks = await keys_client.post(
        "/v1/namespaces/nvct/evaluations/apikey.allow", json={"input": {"apiKey": key["value"]}}
    )
    assert tasks.json()["result"]["allowed"] is False
    assert_problem(await keys_client.post("/v1/namespaces/nvcf/evaluations/nope", json={"input": {}}), 404)
    assert_problem(await keys_client.post(url, json={"input": "x"}), 400)


async def test_services_registry(keys_client: httpx.AsyncClient) -> None:
    services = (await keys_client.get("/v1/services")).json()["services"]
    assert {s["id"] for s in services} == {FUNCTIONS_ISSUER, TASKS_ISSUER}
    assert (await keys_client.get(f"/v1/services/{TASKS_ISSUER}")).json()["service"]["product"] == "nv-cloud-tasks"
    assert_problem(await keys_client.get("/v1/services/unknown"), 404)


# --- bad input: a precise problem, and nothing written -------------------------------------------------


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _policy(**changes: Any) -> dict[str, Any]:
    body = key_body()
    body["authorizations"]["policies"][0].update(changes)
    return body


BAD_BODIES: list[tuple[str, Any]] = [
    ("missing expires_at", _without(key_body(), "expires_at")),
    ("null expires_at", {**key_body(), "expires_at": None}),
    ("expires_at not a string", {**key_body(), "expires_at": 12345}),
    ("expires_at not a timestamp", {**key_body(), "expires_at": "tomorrow"}),
    ("expires_at without offset", {**key_body(), "expires_at": "2099-01-01T00:00:00"}),
    ("expires_at in the past", key_body(expires=timedelta(days=-1))),
    ("expires_at beyond max lifetime", key_body(expires=timedelta(days=5000))),
    ("description with symbols", key_body(description="bad!description")),
    ("description too long", key_body(description="x" * 65)),
    ("description wrong type", {**key_body(), "description": 7}),
    ("missing authorizations", _without(key_body(), "authorizations")),
    ("authorizations not an object", {**key_body(), "authorizations": []}),
    ("empty policies", {**key_body(), "authorizations": {"policies": []}}),
    ("unknown scope", _policy(scopes=["launch_rockets"])),
    ("scopes wrong type", _policy(scopes="invoke_function")),
    ("unknown resource type", _policy(resources=[{"id": "*", "type": "everything"}])),
    ("function resource not a uuid", _policy(resources=[{"id": "not-a-uuid/*", "type": "function"}])),
    ("tasks product under functions issuer", _policy(product="nv-cloud-tasks")),
    ("unknown product", _policy(product="nv-cloud-rockets")),
    ("unknown audience", {**key_body(), "audience_service_ids": ["nobody"]}),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
async def test_bad_create_body_is_400_and_writes_nothing(
    gateway: Gateway, keys_client: httpx.AsyncClient, case: str, body: Any
) -> None:
    token = await admin_token(keys_client)
    response = await keys_client.post("/v1/keys", json=body, headers=auth(token))
    assert_problem(response, 400, "bad-request")
    assert await gateway.runtime.api_keys.count() == 0


@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b"\xff\xfe", b""])
async def test_malformed_json_is_400(gateway: Gateway, keys_client: httpx.AsyncClient, raw: bytes) -> None:
    token = await admin_token(keys_client)
    response = await keys_client.post(
        "/v1/keys", content=raw, headers=auth(token, **{"Content-Type": "application/json"})
    )
    assert_problem(response, 400)
    assert await gateway.runtime.api_keys.count() == 0


async def test_oversized_body_is_413(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    body = key_body()
    body["description"] = "x" * (2 << 20)
    response = await keys_client.post("/v1/keys", json=body, headers=auth(token))
    assert_problem(response, 413, "payload-too-large")
    assert await gateway.runtime.api_keys.count() == 0


@pytest.mark.parametrize(
    ("missing", "detail"),
    [("Key-Owner-Id", "Key-Owner-Id is not set"), ("Key-Issuer-Id", "Key-Issuer-Id is not set")],
)
async def test_missing_key_headers_are_400(
    gateway: Gateway, keys_client: httpx.AsyncClient, missing: str, detail: str
) -> None:
    token = await admin_token(keys_client)
    headers = {k: v for k, v in auth(token).items() if k != missing}
    problem = assert_problem(await keys_client.post("/v1/keys", json=key_body(), headers=headers), 400)
    assert problem["detail"] == detail
    assert await gateway.runtime.api_keys.count() == 0


async def test_owner_header_checked_before_issuer(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    headers = {"Authorization": f"Bearer {token}"}
    problem = assert_problem(await keys_client.post("/v1/keys", json=key_body(), headers=headers), 400)
    assert problem["detail"] == "Key-Owner-Id is not set"


async def test_unregistered_issuer_is_400(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    response = await keys_client.post("/v1/keys", json=key_body(), headers=auth(token, **{"Key-Issuer-Id": "rogue"}))
    assert_problem(response, 400)


@pytest.mark.parametrize("key_id", ["not-a-uuid", "1234", "g" * 36])
async def test_a_key_id_that_is_not_a_uuid_is_404(keys_client: httpx.AsyncClient, key_id: str) -> None:
    token = await admin_token(keys_client)  # every key id is a UUID: anything else names no key
    assert_problem(await keys_client.get(f"/v1/keys/{key_id}", headers=auth(token)), 404, "not-found")
    assert_problem(await keys_client.delete(f"/v1/keys/{key_id}", headers=auth(token)), 404, "not-found")


async def test_unknown_id_is_404(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    unknown = uuid.uuid4()
    assert_problem(await keys_client.get(f"/v1/keys/{unknown}", headers=auth(token)), 404)
    put = await keys_client.put(f"/v1/keys/{unknown}/authorizations", json={"policies": []}, headers=auth(token))
    assert_problem(put, 404)


async def test_bad_authorizations_update_changes_nothing(keys_client: httpx.AsyncClient) -> None:
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token)
    bad = {"policies": [{"product": "nv-cloud-functions", "scopes": ["nope"]}]}
    assert_problem(await keys_client.put(f"/v1/keys/{key['id']}/authorizations", json=bad, headers=auth(token)), 400)
    got = (await keys_client.get(f"/v1/keys/{key['id']}", headers=auth(token))).json()
    assert got["authorizations"] == key["authorizations"]


async def test_unknown_path_on_keys_host_is_404_problem(keys_client: httpx.AsyncClient) -> None:
    assert_problem(await keys_client.get("/v1/nothing-here"), 404)
