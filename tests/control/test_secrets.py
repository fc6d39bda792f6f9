"""``PUT /v2/nvcf/secrets/…``: function-version and telemetry secrets (sealed, never shown)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from gateway.store.schema import function_secrets, telemetries
from tests.control.conftest import OPERATOR_SCOPES, OTHER_NCA_ID, Minter
from tests.control.helpers import create_function
from tests.gateway.helpers import assert_problem, create_key, key_body

Headers = dict[str, str]
PLAIN = "s3cr3t-plaintext-value"


def secrets_url(function_id: str, version_id: str) -> str:
    return f"/v2/nvcf/secrets/functions/{function_id}/versions/{version_id}"


def telemetry_body(name: str = "grafana-secret", value: Any = "tok-plaintext-1") -> dict[str, Any]:
    return {
        "endpoint": "https://otlp.example.com/otlp",
        "protocol": "HTTP",
        "provider": "GRAFANA_CLOUD",
        "types": ["LOGS"],
        "secret": {"name": name, "value": value},
    }


async def stored_secrets(gateway: Gateway) -> list[tuple[str, str, str]]:
    async with gateway.runtime.store.engine.connect() as conn:
        rows = await conn.execute(select(function_secrets).order_by(function_secrets.c.name))
        return [(r.version_id, r.name, r.ciphertext) for r in rows]


async def stored_telemetries(gateway: Gateway) -> list[tuple[str, str | None, str | None]]:
    async with gateway.runtime.store.engine.connect() as conn:
        rows = await conn.execute(select(telemetries).order_by(telemetries.c.telemetry_id))
        return [(r.telemetry_id, r.secret_name, r.ciphertext) for r in rows]


def opened(gateway: Gateway, ciphertext: str, context: str) -> str:
    return gateway.runtime.secretbox.open_sealed(ciphertext, context)


async def test_put_function_secrets_merges_and_seals(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers
) -> None:
    dto = await create_function(api, operator, secrets=[{"name": "KEEP", "value": "kept-value"}])
    fid, vid = dto["id"], dto["versionId"]
    body = {"secrets": [{"name": "API_TOKEN", "value": PLAIN}, {"name": "cfg.json", "value": {"k": "obj-secret"}}]}
    response = await api.put(secrets_url(fid, vid), json=body, headers=operator)
    assert response.status_code == 204 and response.content == b""
    assert "content-type" not in response.headers

    got = await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}?includeSecrets=true", headers=operator)
    assert got.status_code == 200
    assert got.json()["function"]["secrets"] == ["API_TOKEN", "KEEP", "cfg.json"]
    listed = await api.get("/v2/nvcf/functions", headers=operator)
    for text in (got.text, listed.text):
        assert PLAIN not in text and "obj-secret" not in text and "kept-value" not in text

    rows = await stored_secrets(gateway)
    assert [(v, n) for v, n, _ in rows] == [(vid, "API_TOKEN"), (vid, "KEEP"), (vid, "cfg.json")]
    assert all(PLAIN not in c and "obj-secret" not in c for _, _, c in rows)
    sealed = {n: c for _, n, c in rows}
    assert opened(gateway, sealed["API_TOKEN"], f"secret:{vid}:API_TOKEN") == PLAIN
    assert opened(gateway, sealed["cfg.json"], f"secret:{vid}:cfg.json") == '{"k":"obj-secret"}'
    assert opened(gateway, sealed["KEEP"], f"secret:{vid}:KEEP") == "kept-value"

    # Same name again: the value is replaced, the others stay.
    again = await api.put(secrets_url(fid, vid), json={"secrets": [{"name": "KEEP", "value": "new"}]}, headers=operator)
    assert again.status_code == 204
    sealed = {n: c for _, n, c in await stored_secrets(gateway)}
    assert set(sealed) == {"API_TOKEN", "KEEP", "cfg.json"}
    assert opened(gateway, sealed["KEEP"], f"secret:{vid}:KEEP") == "new"


async def test_status_rule(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    bare = await create_function(api, operator)
    with_secret = await create_function(api, operator, name="other", secrets=[{"name": "A", "value": "1"}])
    for dto in (bare, with_secret):
        await gateway.runtime.catalog.functions.set_status(dto["versionId"], "ACTIVE")
    body = {"secrets": [{"name": "A", "value": "2"}]}
    problem = assert_problem(
        await api.put(secrets_url(bare["id"], bare["versionId"]), json=body, headers=operator), 400
    )
    assert "INACTIVE" in problem["detail"]
    updated = await api.put(secrets_url(with_secret["id"], with_secret["versionId"]), json=body, headers=operator)
    assert updated.status_code == 204
    rows = await stored_secrets(gateway)
    assert [(v, n) for v, n, _ in rows] == [(with_secret["versionId"], "A")]
    assert opened(gateway, rows[0][2], f"secret:{with_secret['versionId']}:A") == "2"


INVALID: list[tuple[str, Any]] = [
    ("missing secrets", {}),
    ("empty secrets", {"secrets": []}),
    ("null secrets", {"secrets": None}),
    ("duplicate names", {"secrets": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}),
    ("bad name", {"secrets": [{"name": "-bad", "value": "1"}]}),
    ("name too long", {"secrets": [{"name": "n" * 49, "value": "1"}]}),
    ("value too long", {"secrets": [{"name": "A", "value": "v" * 32769}]}),
    ("missing value", {"secrets": [{"name": "A"}]}),
    ("value is a number", {"secrets": [{"name": "A", "value": 5}]}),
    ("secrets not a list", {"secrets": {"name": "A", "value": "1"}}),
    ("body is a list", [{"name": "A", "value": "1"}]),
]


@pytest.mark.parametrize(("case", "body"), INVALID, ids=[c for c, _ in INVALID])
async def test_invalid_function_secrets_400_and_nothing_written(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, case: str, body: Any
) -> None:
    dto = await create_function(api, operator, secrets=[{"name": "A", "value": "orig"}])
    before = await stored_secrets(gateway)
    response = await api.put(secrets_url(dto["id"], dto["versionId"]), json=body, headers=operator)
    assert_problem(response, 400, "bad-request")
    assert await stored_secrets(gateway) == before


async def test_function_secrets_access(
    gateway: Gateway,
    api: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    admin: Headers,
    operator: Headers,
    other_admin: Headers,
    mint: Minter,
) -> None:
    dto = await create_function(api, operator)
    fid, vid = dto["id"], dto["versionId"]
    body = {"secrets": [{"name": "A", "value": PLAIN}]}
    assert_problem(await api.put(secrets_url(fid, vid), json=body), 401)
    no_scope = mint(DEFAULT_ADMIN_CLIENT_ID, [s for s in OPERATOR_SCOPES if s != "update_secrets"])
    token = admin["Authorization"].removeprefix("Bearer ")
    function_key = (await create_key(keys_client, token))["value"]
    for bearer in (no_scope, function_key):
        response = await api.put(secrets_url(fid, vid), json=body, headers={"Authorization": f"Bearer {bearer}"})
        assert_problem(response, 403, "forbidden")
    # Another account's version is 404, even once shared with it.
    assert_problem(await api.put(secrets_url(fid, vid), json=body, headers=other_admin), 404, "not-found")
    shared = await api.post(
        f"/v2/nvcf/authorizations/functions/{fid}",
        json={"authorizedParties": [{"ncaId": OTHER_NCA_ID}]},
        headers=operator,
    )
    assert shared.status_code == 200
    assert_problem(await api.put(secrets_url(fid, vid), json=body, headers=other_admin), 404)
    unknown = str(uuid.uuid4())
    assert_problem(await api.put(secrets_url(unknown, unknown), json=body, headers=operator), 404)
    assert_problem(await api.put(secrets_url(fid, unknown), json=body, headers=operator), 404)
    assert_problem(await api.put(secrets_url(unknown, vid), json=body, headers=operator), 404)
    assert_problem(await api.put(secrets_url("nope", vid), json=body, headers=operator), 400)
    assert_problem(await api.put(secrets_url(fid, "nope"), json=body, headers=operator), 400)
    assert await stored_secrets(gateway) == []
    # An API key with update_secrets may (scope apikey:update_secrets).
    secrets_key = (await create_key(keys_client, token, key_body(scopes=["update_secrets"])))["value"]
    ok = await api.put(secrets_url(fid, vid), json=body, headers={"Authorization": f"Bearer {secrets_key}"})
    assert ok.status_code == 204


async def test_put_telemetry_secret(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    created = await api.post("/v2/nvcf/telemetries", json=telemetry_body(), headers=operator)
    assert created.status_code == 200 and "tok-plaintext-1" not in created.text
    tid = created.json()["telemetry"]["telemetryId"]
    body = {"secret": {"name": "rotated", "value": {"username": "u", "password": "pw-plaintext-2"}}}
    response = await api.put(f"/v2/nvcf/secrets/telemetries/{tid}", json=body, headers=operator)
    assert response.status_code == 204 and response.content == b""
    [(stored_id, name, ciphertext)] = await stored_telemetries(gateway)
    assert (stored_id, name) == (tid, "rotated")
    assert ciphertext is not None and "pw-plaintext-2" not in ciphertext
    assert opened(gateway, ciphertext, f"telemetry:{tid}:rotated") == '{"username":"u","password":"pw-plaintext-2"}'
    got = await api.get(f"/v2/nvcf/telemetries/{tid}", headers=operator)
    assert got.status_code == 200 and "pw-plaintext-2" not in got.text


@pytest.mark.parametrize(
    "body",
    [{}, {"secret": None}, {"secret": {"name": "x"}}, {"secret": {"name": "bad name", "value": "v"}}, {"secrets": []}],
    ids=["missing", "null", "no value", "bad name", "wrong field"],
)
async def test_invalid_telemetry_secret_400(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, body: dict[str, Any]
) -> None:
    tid = (await api.post("/v2/nvcf/telemetries", json=telemetry_body(), headers=operator)).json()["telemetry"][
        "telemetryId"
    ]
    before = await stored_telemetries(gateway)
    assert_problem(await api.put(f"/v2/nvcf/secrets/telemetries/{tid}", json=body, headers=operator), 400)
    assert await stored_telemetries(gateway) == before


async def test_telemetry_secret_access(
    gateway: Gateway,
    api: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    admin: Headers,
    operator: Headers,
    other_admin: Headers,
    mint: Minter,
) -> None:
    tid = (await api.post("/v2/nvcf/telemetries", json=telemetry_body(), headers=operator)).json()["telemetry"][
        "telemetryId"
    ]
    before = await stored_telemetries(gateway)
    body = {"secret": {"name": "n", "value": "v"}}
    path = f"/v2/nvcf/secrets/telemetries/{tid}"
    assert_problem(await api.put(path, json=body), 401)
    no_scope = mint(DEFAULT_ADMIN_CLIENT_ID, ["manage_telemetries"])
    key = (await create_key(keys_client, admin["Authorization"].removeprefix("Bearer ")))["value"]
    for bearer in (no_scope, key):
        assert_problem(await api.put(path, json=body, headers={"Authorization": f"Bearer {bearer}"}), 403)
    assert_problem(await api.put(path, json=body, headers=other_admin), 404, "not-found")
    assert_problem(await api.put(f"/v2/nvcf/secrets/telemetries/{uuid.uuid4()}", json=body, headers=operator), 404)
    assert_problem(await api.put("/v2/nvcf/secrets/telemetries/xyz", json=body, headers=operator), 400)
    assert await stored_telemetries(gateway) == before
