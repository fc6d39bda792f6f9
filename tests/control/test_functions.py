"""``/v2/nvcf/functions``: contract, visibility, validation (400 and nothing written)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.invocation.rate_policy import RatePolicy
from gateway.store.schema import function_secrets, function_versions
from tests.control.conftest import OTHER_NCA_ID
from tests.control.helpers import create_function, function_body
from tests.gateway.helpers import assert_problem, create_key, key_body

FUNCTION_DTO_REQUIRED = {"id", "ncaId", "versionId", "name", "status", "createdAt"}


async def rows(gateway: Gateway) -> tuple[int, int]:
    async with gateway.runtime.store.engine.connect() as conn:
        versions = (await conn.execute(select(func.count()).select_from(function_versions))).scalar_one()
        secrets = (await conn.execute(select(func.count()).select_from(function_secrets))).scalar_one()
    return versions, secrets


async def test_create_function_returns_function_dto(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await api.post("/v2/nvcf/functions", json=function_body(tags=["team:a"]), headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    dto = response.json()["function"]
    assert set(response.json()) == {"function"}
    assert FUNCTION_DTO_REQUIRED <= set(dto)
    uuid.UUID(dto["id"]), uuid.UUID(dto["versionId"])
    assert dto["status"] == "INACTIVE"
    assert dto["ncaId"] == "nvcf-default"
    assert dto["name"] == "echo"
    assert dto["inferenceUrl"] == "/echo" and dto["inferencePort"] == 8000
    assert dto["containerImage"] == "nvcr.io/example/echo:1.0"
    assert dto["apiBodyFormat"] == "CUSTOM" and dto["functionType"] == "DEFAULT"
    assert dto["tags"] == ["team:a"]
    assert dto["createdAt"].endswith("Z") and dto["creationTime"] == dto["createdAt"]
    assert "ownedByDifferentAccount" not in dto  # nulls are omitted


async def test_server_defaults_for_health(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = function_body()
    del body["health"], body["inferencePort"]
    dto = (await api.post("/v2/nvcf/functions", json=body, headers=admin)).json()["function"]
    assert dto["health"] == {
        "protocol": "HTTP",
        "uri": "/v2/health/ready",
        "port": 8000,
        "timeout": "PT10S",
        "expectedStatusCode": 200,
    }
    assert dto["inferencePort"] == 8000


async def test_unknown_fields_ignored_like_nvcf_cli_example(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = function_body(authorizedParties=[{"ncaId": "x"}], somethingNew=1)
    assert (await api.post("/v2/nvcf/functions", json=body, headers=admin)).status_code == 200


async def test_versions_list_get_and_ids(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = await create_function(api, admin)
    fid = first["id"]
    response = await api.post(f"/v2/nvcf/functions/{fid}/versions", json=function_body(name="echo-v2"), headers=admin)
    assert response.status_code == 200
    second = response.json()["function"]
    assert second["id"] == fid and second["versionId"] != first["versionId"]
    versions = (await api.get(f"/v2/nvcf/functions/{fid}/versions", headers=admin)).json()
    assert [v["versionId"] for v in versions["functions"]] == [first["versionId"], second["versionId"]]
    got = await api.get(f"/v2/nvcf/functions/{fid}/versions/{second['versionId']}", headers=admin)
    assert got.status_code == 200 and got.json()["function"]["name"] == "echo-v2"
    ids = (await api.get("/v2/nvcf/functions/ids", headers=admin)).json()
    assert ids == {"functionIds": [fid]}
    listed = (await api.get("/v2/nvcf/functions", headers=admin)).json()
    assert {f["versionId"] for f in listed["functions"]} == {first["versionId"], second["versionId"]}


async def test_secrets_named_never_returned(gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    secrets = [{"name": "API_TOKEN", "value": "hunter2-secret"}, {"name": "cfg", "value": {"a": 1}}]
    created = await api.post("/v2/nvcf/functions", json=function_body(secrets=secrets), headers=admin)
    assert "hunter2-secret" not in created.text
    dto = created.json()["function"]
    url = f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}?includeSecrets=true"
    got = await api.get(url, headers=admin)
    assert got.json()["function"]["secrets"] == ["API_TOKEN", "cfg"]
    assert "hunter2-secret" not in got.text
    async with gateway.runtime.store.engine.connect() as conn:
        stored = (await conn.execute(select(function_secrets))).all()
    assert len(stored) == 2 and all("hunter2" not in row.ciphertext for row in stored)
    sealed = dict(await gateway.runtime.catalog.functions.sealed_secrets(dto["versionId"]))
    context = f"secret:{dto['versionId']}:API_TOKEN"
    assert gateway.runtime.secretbox.open_sealed(sealed["API_TOKEN"], context) == "hunter2-secret"


async def test_update_tags_and_rate_limit(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    dto = await create_function(api, admin)
    url = f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}"
    updated = await api.put(url, json={"tags": ["x"], "rateLimit": {"rateLimit": "5-M,100-H"}}, headers=admin)
    assert updated.status_code == 200
    assert updated.json()["function"]["tags"] == ["x"]
    assert updated.json()["function"]["rateLimit"] == {"rateLimit": "5-M,100-H"}
    assert_problem(await api.put(url, json={}, headers=admin), 400)
    rl = f"/v2/nvcf/ratelimit/functions/{dto['id']}/versions/{dto['versionId']}"
    put = await api.put(rl, json={"rateLimit": {"rateLimit": "100-S"}}, headers=admin)
    assert put.status_code == 204 and put.content == b""
    assert (await api.get(url, headers=admin)).json()["function"]["rateLimit"]["rateLimit"] == "100-S"
    assert (await api.delete(rl, headers=admin)).status_code == 204
    assert "rateLimit" not in (await api.get(url, headers=admin)).json()["function"]
    meta = f"/v2/nvcf/metadata/functions/{dto['id']}/versions/{dto['versionId']}"
    assert (await api.put(meta, json={"tags": ["m"]}, headers=admin)).json()["function"]["tags"] == ["m"]


async def test_delete_function_version(gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    dto = await create_function(api, admin, secrets=[{"name": "S", "value": "v"}])
    url = f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}"
    response = await api.delete(url, headers=admin)
    assert response.status_code == 204 and response.content == b""
    assert_problem(await api.get(url, headers=admin), 404)
    assert await rows(gateway) == (0, 0)
    assert gateway.runtime.routes.get(dto["id"]) is None


async def test_routing_cache_follows_writes(gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    dto = await create_function(api, admin, rateLimit={"rateLimit": "10-S"})
    route = gateway.runtime.routes.get(dto["id"])
    assert route is not None and route.nca_id == "nvcf-default"
    version = route.versions[dto["versionId"]]
    assert (version.status, version.inference_url) == ("INACTIVE", "/echo")
    assert version.rate_limit == RatePolicy("10-S", frozenset(), {}, None)
    assert not version.invocable


async def test_other_account_sees_nothing_and_cannot_write(
    api: httpx.AsyncClient, admin: dict[str, str], other_admin: dict[str, str]
) -> None:
    dto = await create_function(api, admin)
    url = f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}"
    assert (await api.get("/v2/nvcf/functions", headers=other_admin)).json() == {"functions": []}
    assert_problem(await api.get(url, headers=other_admin), 404)
    assert_problem(await api.put(url, json={"tags": ["x"]}, headers=other_admin), 404)
    assert_problem(await api.delete(url, headers=other_admin), 404)
    assert_problem(
        await api.post(f"/v2/nvcf/functions/{dto['id']}/versions", json=function_body(), headers=other_admin), 404
    )
    own = await create_function(api, other_admin, name="theirs")
    assert own["ncaId"] == OTHER_NCA_ID


async def test_visibility_filter(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_function(api, admin)
    private = await api.get("/v2/nvcf/functions?visibility=private", headers=admin)
    assert len(private.json()["functions"]) == 1
    assert (await api.get("/v2/nvcf/functions?visibility=authorized,public", headers=admin)).json() == {"functions": []}
    assert len((await api.get("/v2/nvcf/functions?visibility=PRIVATE", headers=admin)).json()["functions"]) == 1
    assert_problem(await api.get("/v2/nvcf/functions?visibility=secret", headers=admin), 400)


async def test_api_key_scopes(
    gateway: Gateway, api: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_function(api, admin)
    token = admin["Authorization"].removeprefix("Bearer ")
    listing_key = (await create_key(keys_client, token))["value"]
    listed = await api.get("/v2/nvcf/functions", headers={"Authorization": f"Bearer {listing_key}"})
    assert listed.status_code == 200 and len(listed.json()["functions"]) == 1
    creating = await api.post(
        "/v2/nvcf/functions", json=function_body(), headers={"Authorization": f"Bearer {listing_key}"}
    )
    assert_problem(creating, 403, "forbidden")
    invoke_only = (await create_key(keys_client, token, key_body(scopes=["invoke_function"])))["value"]
    assert_problem(await api.get("/v2/nvcf/functions", headers={"Authorization": f"Bearer {invoke_only}"}), 403)
    assert_problem(await api.get("/v2/nvcf/functions"), 401)


async def test_unknown_client_is_404(api: httpx.AsyncClient, mint: Any) -> None:
    stranger = {"Authorization": f"Bearer {mint('nobody-knows-me', ['list_functions'])}"}
    problem = assert_problem(await api.get("/v2/nvcf/functions", headers=stranger), 404)
    assert problem["detail"] == "Unknown client_id"


async def test_unknown_and_bad_ids(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    unknown = uuid.uuid4()
    assert_problem(await api.get(f"/v2/nvcf/functions/{unknown}/versions", headers=admin), 404)
    assert_problem(await api.get(f"/v2/nvcf/functions/{unknown}/versions/{unknown}", headers=admin), 404)
    assert_problem(await api.get("/v2/nvcf/functions/not-a-uuid/versions", headers=admin), 400)
    assert_problem(await api.delete(f"/v2/nvcf/functions/{unknown}/versions/xyz", headers=admin), 400)


INVALID: list[tuple[str, dict[str, Any]]] = [
    ("bad name", function_body(name="bad name!")),
    ("name starting with dash", function_body(name="-echo")),
    ("name too long", function_body(name="a" * 129)),
    ("missing inferenceUrl", {k: v for k, v in function_body().items() if k != "inferenceUrl"}),
    ("missing name", {k: v for k, v in function_body().items() if k != "name"}),
    ("no image, models or chart", {k: v for k, v in function_body().items() if k != "containerImage"}),
    ("image and helm chart", function_body(helmChart="https://h/c.tgz", helmChartServiceName="svc")),
    ("helm chart without service name", {**function_body(helmChart="https://h/c.tgz"), "containerImage": None}),
    ("health missing inner fields", function_body(health={"protocol": "HTTP", "uri": "/h"})),
    ("health bad timeout", function_body(health={**function_body()["health"], "timeout": "10 seconds"})),
    ("health bad protocol", function_body(health={**function_body()["health"], "protocol": "FTP"})),
    ("too many tags", function_body(tags=[f"t{i}" for i in range(65)])),
    ("tag too long", function_body(tags=["t" * 129])),
    ("tag bad characters", function_body(tags=["a b"])),
    ("description too long", function_body(description="d" * 257)),
    ("bad rate limit", function_body(rateLimit={"rateLimit": "100 per second"})),
    ("bad rate limit unit", function_body(rateLimit={"rateLimit": "100-Y"})),
    ("rate limit that limits nothing", function_body(rateLimit={"exemptedNcaIds": ["a"], "syncCheck": True})),
    ("perNcaIdRate as a flag", function_body(rateLimit={"rateLimit": "1-S", "perNcaIdRate": True})),
    ("bad perNcaIdRate rate", function_body(rateLimit={"perNcaIdRate": {"nca": "1 per second"}})),
    ("perUserRate as a flag", function_body(rateLimit={"rateLimit": "1-S", "perUserRate": True})),
    ("bad perUserRate", function_body(rateLimit={"perUserRate": "1-W"})),
    ("too many per-account rates", function_body(rateLimit={"perNcaIdRate": {f"a{i}": "1-S" for i in range(1001)}})),
    ("empty exempted account", function_body(rateLimit={"rateLimit": "1-S", "exemptedNcaIds": [""]})),
    ("too many exempted accounts", function_body(rateLimit={"rateLimit": "1-S", "exemptedNcaIds": ["a"] * 33})),
    ("bad secret name", function_body(secrets=[{"name": "-x", "value": "v"}])),
    ("secret value too long", function_body(secrets=[{"name": "x", "value": "v" * 32769}])),
    ("duplicate secret", function_body(secrets=[{"name": "x", "value": "1"}, {"name": "x", "value": "2"}])),
    ("bad port", function_body(inferencePort=0)),
    ("bad function type", function_body(functionType="BATCH")),
    ("LLM without models", function_body(functionType="LLM")),
    ("empty telemetries", function_body(telemetries={})),
    ("unknown telemetry", function_body(telemetries={"logsTelemetryId": str(uuid.uuid4())})),
    ("wrong type name", function_body(name=12)),
]


@pytest.mark.parametrize(("case", "body"), INVALID, ids=[case for case, _ in INVALID])
async def test_invalid_create_is_400_and_writes_nothing(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str], case: str, body: dict[str, Any]
) -> None:
    response = await api.post("/v2/nvcf/functions", json=body, headers=admin)
    problem = assert_problem(response, 400, "bad-request")
    assert problem["detail"].startswith("Validation failed") or problem["detail"].startswith("Invalid request")
    assert await rows(gateway) == (0, 0)


@pytest.mark.parametrize("raw", [b"{", b"[]", b"", b'"x"'])
async def test_malformed_json_is_400(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str], raw: bytes
) -> None:
    response = await api.post("/v2/nvcf/functions", content=raw, headers={**admin, "Content-Type": "application/json"})
    assert_problem(response, 400)
    assert await rows(gateway) == (0, 0)


async def test_oversized_body_is_413(gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await api.post("/v2/nvcf/functions", json=function_body(description="x" * (2 << 20)), headers=admin)
    assert_problem(response, 413)
    assert await rows(gateway) == (0, 0)


async def test_openapi_document(api: httpx.AsyncClient) -> None:
    response = await api.get("/v3/openapi")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"] == "3.1.0"
    assert "post" in doc["paths"]["/v2/nvcf/functions"]
    create = doc["paths"]["/v2/nvcf/functions"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateFunctionRequest"
    }
    assert "CreateFunctionRequest" in doc["components"]["schemas"]
