"""``/v2/nvcf/telemetries``: create, list, get, delete (refused while used), validation, access."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from gateway.app import Gateway
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from gateway.store.schema import accounts, telemetries
from tests.control.conftest import OPERATOR_SCOPES, Minter
from tests.control.helpers import create_function, function_body
from tests.gateway.helpers import assert_problem, create_key, key_body

Headers = dict[str, str]
DTO_FIELDS = {"telemetryId", "name", "endpoint", "protocol", "provider", "types", "createdAt"}
PLAIN = "telemetry-plaintext-secret"


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "endpoint": "https://otlp-gateway.example.net/otlp",
        "protocol": "HTTP",
        "provider": "GRAFANA_CLOUD",
        "types": ["TRACES", "LOGS"],
        "secret": {"name": "grafana-secret", "value": PLAIN},
    }
    data.update(overrides)
    return data


async def count(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(telemetries))).scalar_one())


async def create(api: httpx.AsyncClient, headers: Headers, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/v2/nvcf/telemetries", json=body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["telemetry"]
    return dto


async def test_create_contract(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    response = await api.post("/v2/nvcf/telemetries", json=body(name="ignored"), headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"telemetry"}
    dto = response.json()["telemetry"]
    assert set(dto) == DTO_FIELDS
    uuid.UUID(dto["telemetryId"])
    assert dto["name"] == "grafana-secret"
    assert dto["endpoint"] == "https://otlp-gateway.example.net/otlp"
    assert (dto["protocol"], dto["provider"], dto["types"]) == ("HTTP", "GRAFANA_CLOUD", ["LOGS", "TRACES"])
    assert dto["createdAt"].endswith("Z")
    assert PLAIN not in response.text
    async with gateway.runtime.store.engine.connect() as conn:
        row = (await conn.execute(select(telemetries))).one()
    assert row.nca_id == "nvcf-default" and row.secret_name == "grafana-secret"
    assert PLAIN not in row.ciphertext and PLAIN not in str(row.spec)
    context = f"telemetry:{dto['telemetryId']}:grafana-secret"
    assert gateway.runtime.secretbox.open_sealed(row.ciphertext, context) == PLAIN


async def test_enums_any_case_and_object_secret(api: httpx.AsyncClient, operator: Headers) -> None:
    dto = await create(
        api,
        operator,
        protocol="grpc",
        provider="otel_collector",
        types=["metrics", "LOGS", "Metrics"],
        secret={"name": "certs", "value": {"clientCert": "c", "clientKey": "k"}},
    )
    assert (dto["protocol"], dto["provider"], dto["types"]) == ("GRPC", "OTEL_COLLECTOR", ["LOGS", "METRICS"])


async def test_list_get_delete(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    assert (await api.get("/v2/nvcf/telemetries", headers=operator)).json() == {"telemetries": []}
    first = await create(api, operator)
    second = await create(api, operator, provider="DATADOG", secret={"name": "dd", "value": "x"})
    listed = await api.get("/v2/nvcf/telemetries", headers=operator)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    assert listed.json() == {"telemetries": [first, second]}
    got = await api.get(f"/v2/nvcf/telemetries/{first['telemetryId']}", headers=operator)
    assert got.status_code == 200 and got.json() == {"telemetry": first}
    deleted = await api.delete(f"/v2/nvcf/telemetries/{first['telemetryId']}", headers=operator)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await api.get(f"/v2/nvcf/telemetries/{first['telemetryId']}", headers=operator), 404)
    assert_problem(await api.delete(f"/v2/nvcf/telemetries/{first['telemetryId']}", headers=operator), 404)
    assert (await api.get("/v2/nvcf/telemetries", headers=operator)).json() == {"telemetries": [second]}
    assert await count(gateway) == 1


async def test_delete_refused_while_a_function_uses_it(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers
) -> None:
    logs = await create(api, operator)
    traces = await create(api, operator, secret={"name": "second", "value": "y"})
    dto = await create_function(
        api, operator, telemetries={"logsTelemetryId": logs["telemetryId"], "tracesTelemetryId": traces["telemetryId"]}
    )
    for telemetry in (logs, traces):
        problem = assert_problem(
            await api.delete(f"/v2/nvcf/telemetries/{telemetry['telemetryId']}", headers=operator), 400, "bad-request"
        )
        assert dto["id"] in problem["detail"] and dto["versionId"] in problem["detail"]
        assert telemetry["telemetryId"] in problem["detail"]
    assert await count(gateway) == 2
    version = f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}"
    assert (await api.delete(version, headers=operator)).status_code == 204
    assert (await api.delete(f"/v2/nvcf/telemetries/{logs['telemetryId']}", headers=operator)).status_code == 204
    assert await count(gateway) == 1


async def test_functions_may_only_name_own_telemetries(
    api: httpx.AsyncClient, operator: Headers, other_admin: Headers
) -> None:
    theirs = await create(api, other_admin)
    response = await api.post(
        "/v2/nvcf/functions",
        json=function_body(telemetries={"logsTelemetryId": theirs["telemetryId"]}),
        headers=operator,
    )
    assert_problem(response, 400)


INVALID: list[tuple[str, Any]] = [
    ("missing endpoint", {k: v for k, v in body().items() if k != "endpoint"}),
    ("blank endpoint", body(endpoint="  ")),
    ("missing protocol", {k: v for k, v in body().items() if k != "protocol"}),
    ("bad protocol", body(protocol="TCP")),
    ("bad provider", body(provider="NEWRELIC")),
    ("missing provider", {k: v for k, v in body().items() if k != "provider"}),
    ("empty types", body(types=[])),
    ("null types", body(types=None)),
    ("missing types", {k: v for k, v in body().items() if k != "types"}),
    ("invalid type", body(types=["INVALID_TYPE"])),
    ("mixed types", body(types=["LOGS", "INVALID_TYPE"])),
    ("missing secret", {k: v for k, v in body().items() if k != "secret"}),
    ("null secret", body(secret=None)),
    ("secret without value", body(secret={"name": "s"})),
    ("secret bad name", body(secret={"name": "bad name", "value": "v"})),
    ("secret value too long", body(secret={"name": "s", "value": "v" * 32769})),
    ("not an object", ["x"]),
]


@pytest.mark.parametrize(("case", "data"), INVALID, ids=[c for c, _ in INVALID])
async def test_invalid_create_400_nothing_written(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, case: str, data: Any
) -> None:
    assert_problem(await api.post("/v2/nvcf/telemetries", json=data, headers=operator), 400, "bad-request")
    assert await count(gateway) == 0


@pytest.mark.parametrize("name", ["grafana-secret", "Grafana-Secret"])
async def test_duplicate_secret_name_400(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, name: str
) -> None:
    await create(api, operator)
    response = await api.post("/v2/nvcf/telemetries", json=body(secret={"name": name, "value": "v"}), headers=operator)
    assert_problem(response, 400, "bad-request")
    assert await count(gateway) == 1


async def test_account_limit(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    async with gateway.runtime.store.engine.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.nca_id == "nvcf-default").values(limits={"maxTelemetriesAllowed": 1})
        )
    await create(api, operator)
    response = await api.post("/v2/nvcf/telemetries", json=body(secret={"name": "two", "value": "v"}), headers=operator)
    assert "maximum" in assert_problem(response, 400)["detail"]
    assert await count(gateway) == 1


async def test_access(
    gateway: Gateway,
    api: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    admin: Headers,
    operator: Headers,
    other_admin: Headers,
    mint: Minter,
) -> None:
    mine = await create(api, operator)
    one = f"/v2/nvcf/telemetries/{mine['telemetryId']}"
    token = admin["Authorization"].removeprefix("Bearer ")
    function_key = (await create_key(keys_client, token))["value"]
    no_scope = mint(DEFAULT_ADMIN_CLIENT_ID, [s for s in OPERATOR_SCOPES if s != "manage_telemetries"])
    calls = [("POST", "/v2/nvcf/telemetries", body()), ("GET", "/v2/nvcf/telemetries", None)]
    calls += [("GET", one, None), ("DELETE", one, None)]
    for method, path, data in calls:
        assert_problem(await api.request(method, path, json=data), 401)
        for bearer in (function_key, no_scope):
            headers = {"Authorization": f"Bearer {bearer}"}
            assert_problem(await api.request(method, path, json=data, headers=headers), 403, "forbidden")
    # Other accounts see nothing of it.
    assert (await api.get("/v2/nvcf/telemetries", headers=other_admin)).json() == {"telemetries": []}
    assert_problem(await api.get(one, headers=other_admin), 404, "not-found")
    assert_problem(await api.delete(one, headers=other_admin), 404)
    unknown = f"/v2/nvcf/telemetries/{uuid.uuid4()}"
    assert_problem(await api.get(unknown, headers=operator), 404)
    assert_problem(await api.delete(unknown, headers=operator), 404)
    assert_problem(await api.get("/v2/nvcf/telemetries/not-a-uuid", headers=operator), 400)
    assert_problem(await api.delete("/v2/nvcf/telemetries/not-a-uuid", headers=operator), 400)
    assert await count(gateway) == 1
    # An API key with manage_telemetries may.
    key = (await create_key(keys_client, token, key_body(scopes=["manage_telemetries"])))["value"]
    listed = await api.get("/v2/nvcf/telemetries", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200 and listed.json() == {"telemetries": [mine]}
