"""Contract of every SIS endpoint (reference §11, §17), under both ``/v1/accounts`` and ``/v1/si/accounts``.

Exact status codes and JSON field names; bad input is a 400 problem (with ICMS's ``error``
member) that writes nothing. Runs on SQLite and PostgreSQL (``database_url``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth import cluster_credentials
from gateway.services.clusters.offers import group_id
from gateway.store import schema
from tests.sis.helpers import DEFAULT_NCA, assert_sis_problem, cluster_body, gpu, register

PREFIXES = ["/v1", "/v1/si"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DTO_FIELDS = {
    "clusterId", "clusterName", "clusterGroupId", "clusterGroupName", "ncaId", "cloudProvider", "region",
    "nvcaVersion", "clusterDescription", "gpus", "createdAt", "lastUpdatedAt",
}  # fmt: skip


async def count_clusters(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(schema.clusters))).scalar_one())


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_register_returns_ids_and_a_credential_once(
    sis: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, prefix: str
) -> None:
    response = await sis.post(f"{prefix}/accounts/{DEFAULT_NCA}/clusters", json=cluster_body(), headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"clusterId", "clusterGroupId", "clusterName", "clusterGroupName", "ncaId", "clusterCredential"}
    uuid.UUID(body["clusterId"])
    assert body["clusterGroupId"] == group_id(DEFAULT_NCA, "east")
    assert (body["clusterName"], body["clusterGroupName"], body["ncaId"]) == ("gpu-east-1", "east", DEFAULT_NCA)
    assert cluster_credentials.well_formed(body["clusterCredential"])
    # Only the hash is stored, and no read shows the credential again.
    async with gateway.runtime.store.engine.connect() as conn:
        row = (await conn.execute(select(schema.clusters))).one()
    assert row.credential_hash == cluster_credentials.credential_hash(body["clusterCredential"])
    assert body["clusterCredential"] not in str(row._asdict())
    got = await sis.get(f"{prefix}/accounts/{DEFAULT_NCA}/clusters/{body['clusterId']}", headers=admin)
    assert "clusterCredential" not in got.json() and body["clusterCredential"] not in got.text


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_get_and_list(sis: httpx.AsyncClient, admin: dict[str, str], prefix: str) -> None:
    first = await register(sis, admin, prefix, authorizedNCAIds=["partner", "partner"], capabilities=["CachingSupport"])
    second = await register(sis, admin, prefix, clusterName="gpu-east-2", gpus=None, clusterDescription=None)
    got = await sis.get(f"{prefix}/accounts/{DEFAULT_NCA}/clusters/{first['clusterId']}", headers=admin)
    assert got.status_code == 200
    dto = got.json()
    assert set(dto) == DTO_FIELDS | {"authorizedNCAIds", "capabilities"}
    assert dto["clusterId"] == first["clusterId"] and dto["clusterGroupId"] == first["clusterGroupId"]
    assert dto["authorizedNCAIds"] == ["partner"]  # duplicates removed
    assert dto["gpus"] == [
        {
            "name": "H100",
            "instanceTypes": [
                {"name": "NCP.GPU.H100_1x", "description": "NCP.GPU.H100_1x node", "default": True},
                {"name": "NCP.GPU.H100_2x", "description": "NCP.GPU.H100_2x node", "default": False},
            ],
        }
    ]
    assert RFC3339.match(dto["createdAt"]) and dto["createdAt"] == dto["lastUpdatedAt"]
    listed = await sis.get(f"{prefix}/accounts/{DEFAULT_NCA}/clusters", headers=admin)
    assert listed.status_code == 200
    items = listed.json()
    assert isinstance(items, list)  # a bare array, as nvcf-cli reads it
    assert [c["clusterId"] for c in items] == [first["clusterId"], second["clusterId"]]
    assert items[0] == dto
    assert set(items[1]) == DTO_FIELDS - {"gpus", "clusterDescription"}


async def test_list_is_empty_array_without_clusters(sis: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for path in ("clusters", "clusterVersions"):
        response = await sis.get(f"/v1/accounts/{DEFAULT_NCA}/{path}", headers=admin)
        assert response.status_code == 200
        assert response.json() == []


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_cluster_versions(sis: httpx.AsyncClient, admin: dict[str, str], prefix: str) -> None:
    a = await register(sis, admin, prefix)
    b = await register(sis, admin, prefix, clusterName="gpu-west", nvcaVersion="2.51.1")
    response = await sis.get(f"{prefix}/accounts/{DEFAULT_NCA}/clusterVersions", headers=admin)
    assert response.status_code == 200
    assert response.json() == [
        {"clusterId": a["clusterId"], "clusterName": "gpu-east-1", "nvcaVersion": "2.50.0"},
        {"clusterId": b["clusterId"], "clusterName": "gpu-west", "nvcaVersion": "2.51.1"},
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_update_replaces_given_fields(sis: httpx.AsyncClient, admin: dict[str, str], prefix: str) -> None:
    created = await register(sis, admin, prefix)
    url = f"{prefix}/accounts/{DEFAULT_NCA}/clusters/{created['clusterId']}"
    before = (await sis.get(url, headers=admin)).json()
    body = {
        "clusterGroupName": "west",
        "nvcaVersion": "2.52.0",
        "clusterDescription": None,
        "gpus": [gpu("L40S", "L40S_1x")],
    }
    response = await sis.put(url, json=body, headers=admin)
    assert response.status_code == 200, response.text
    dto = response.json()
    assert dto["clusterGroupName"] == "west" and dto["clusterGroupId"] == group_id(DEFAULT_NCA, "west")
    assert dto["nvcaVersion"] == "2.52.0" and "clusterDescription" not in dto
    assert dto["gpus"] == [
        {"name": "L40S", "instanceTypes": [{"name": "L40S_1x", "description": "L40S_1x node", "default": False}]}
    ]
    assert (dto["clusterName"], dto["region"], dto["createdAt"]) == ("gpu-east-1", "us-east-1", before["createdAt"])
    assert (await sis.get(url, headers=admin)).json() == dto


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_delete_answers_200_with_the_cluster_then_404(
    sis: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, prefix: str
) -> None:
    created = await register(sis, admin, prefix)
    url = f"{prefix}/accounts/{DEFAULT_NCA}/clusters/{created['clusterId']}"
    before = (await sis.get(url, headers=admin)).json()
    response = await sis.delete(url, headers=admin)
    assert response.status_code == 200
    assert response.json() == before
    assert await count_clusters(gateway) == 0
    assert_sis_problem(await sis.get(url, headers=admin), 404, "not-found")
    assert_sis_problem(await sis.delete(url, headers=admin), 404, "not-found")
    assert_sis_problem(await sis.put(url, json={"region": "x"}, headers=admin), 404, "not-found")
    # The revoked credential no longer finds a cluster.
    assert await gateway.runtime.cluster_registry.by_credential(created["clusterCredential"]) is None


async def test_duplicate_name_is_400_already_exists(
    sis: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    first = await register(sis, admin)
    again = await sis.post(f"/v1/accounts/{DEFAULT_NCA}/clusters", json=cluster_body(region="eu"), headers=admin)
    problem = assert_sis_problem(again, 400, "bad-request")
    assert "already exists" in problem["detail"]  # what nvcf-cli --ignore-existing looks for
    assert await count_clusters(gateway) == 1
    other = await register(sis, admin, clusterName="gpu-east-2")
    rename = await sis.put(
        f"/v1/accounts/{DEFAULT_NCA}/clusters/{other['clusterId']}", json={"clusterName": "gpu-east-1"}, headers=admin
    )
    assert "already exists" in assert_sis_problem(rename, 400)["detail"]
    got = await sis.get(f"/v1/accounts/{DEFAULT_NCA}/clusters/{other['clusterId']}", headers=admin)
    assert got.json()["clusterName"] == "gpu-east-2"
    assert first["clusterId"] != other["clusterId"]


def _without(name: str) -> dict[str, Any]:
    body = cluster_body()
    del body[name]
    return body


TWO_DEFAULTS = [{"name": "a", "default": True}, {"name": "b", "default": True}]
INVALID_REGISTRATIONS: list[tuple[str, Any]] = [
    ("missing clusterName", _without("clusterName")),
    ("missing clusterGroupName", _without("clusterGroupName")),
    ("missing ncaId", _without("ncaId")),
    ("missing cloudProvider", _without("cloudProvider")),
    ("missing region", _without("region")),
    ("missing nvcaVersion", _without("nvcaVersion")),
    ("name with a space", cluster_body(clusterName="gpu east")),
    ("name too long", cluster_body(clusterName="a" * 65)),
    ("name ends with a dash", cluster_body(clusterName="gpu-")),
    ("name is a number", cluster_body(clusterName=7)),
    ("NUL in description", cluster_body(clusterDescription="a\x00b")),
    ("ncaId of another account", cluster_body(ncaId="someone-else")),
    ("gpu without instance types", cluster_body(gpus=[{"name": "H100", "instanceTypes": []}])),
    ("gpu listed twice", cluster_body(gpus=[gpu("H100", "a"), gpu("h100", "b")])),
    ("instance type twice", cluster_body(gpus=[gpu("H100", "a", "A")])),
    ("two defaults", cluster_body(gpus=[{"name": "H100", "instanceTypes": TWO_DEFAULTS}])),
    ("gpus not a list", cluster_body(gpus={"name": "H100"})),
    ("authorizedNCAIds not strings", cluster_body(authorizedNCAIds=[1])),
    ("body is an array", [cluster_body()]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body"), INVALID_REGISTRATIONS, ids=[c for c, _ in INVALID_REGISTRATIONS])
async def test_invalid_registration_is_400_and_writes_nothing(
    sis: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, case: str, body: Any
) -> None:
    response = await sis.post(f"/v1/accounts/{DEFAULT_NCA}/clusters", json=body, headers=admin)
    assert_sis_problem(response, 400, "bad-request")
    assert await count_clusters(gateway) == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"null"])
async def test_unreadable_body_is_400(
    sis: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, raw: bytes
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = await sis.post(f"/v1/accounts/{DEFAULT_NCA}/clusters", content=raw, headers=headers)
    assert_sis_problem(response, 400, "bad-request")
    assert await count_clusters(gateway) == 0


INVALID_UPDATES: list[tuple[str, Any]] = [
    ("empty", {}),
    ("only ncaId", {"ncaId": DEFAULT_NCA}),
    ("other ncaId", {"ncaId": "someone-else", "region": "eu"}),
    ("clusterName removed", {"clusterName": None}),
    ("region removed", {"region": None}),
    ("bad name", {"clusterName": "-x"}),
    ("bad gpus", {"gpus": [{"name": "H100"}]}),
]


@pytest.mark.parametrize(("case", "body"), INVALID_UPDATES, ids=[c for c, _ in INVALID_UPDATES])
async def test_invalid_update_is_400_and_changes_nothing(
    sis: httpx.AsyncClient, admin: dict[str, str], case: str, body: Any
) -> None:
    created = await register(sis, admin)
    url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{created['clusterId']}"
    before = (await sis.get(url, headers=admin)).json()
    assert_sis_problem(await sis.put(url, json=body, headers=admin), 400, "bad-request")
    assert (await sis.get(url, headers=admin)).json() == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_and_malformed_cluster_ids(sis: httpx.AsyncClient, admin: dict[str, str], method: str) -> None:
    await register(sis, admin)
    base = f"/v1/accounts/{DEFAULT_NCA}/clusters/"
    body = {"json": {"region": "eu"}} if method == "PUT" else {}
    unknown = await sis.request(method, base + str(uuid.uuid4()), headers=admin, **body)  # type: ignore[arg-type]
    assert_sis_problem(unknown, 404, "not-found")
    malformed = await sis.request(method, base + "not-a-uuid", headers=admin, **body)  # type: ignore[arg-type]
    assert "clusterId" in assert_sis_problem(malformed, 400, "bad-request")["detail"]


async def test_unknown_path_and_method_are_problems(sis: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_sis_problem(await sis.get("/v1/accounts/x/nothing", headers=admin), 404, "not-found")
    response = await sis.patch(f"/v1/accounts/{DEFAULT_NCA}/clusters", headers=admin)
    assert_sis_problem(response, 405, "method-not-allowed")


async def test_sis_endpoints_are_not_on_the_api_host(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await api.get(f"/v1/accounts/{DEFAULT_NCA}/clusters", headers=admin)
    assert response.status_code == 404


async def test_openapi_lists_every_operation(sis: httpx.AsyncClient) -> None:
    response = await sis.get("/v3/openapi")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for prefix in PREFIXES:
        base = prefix + "/accounts/{ncaId}"
        assert set(paths[base + "/clusters"]) == {"get", "post"}
        assert set(paths[base + "/clusters/{clusterId}"]) == {"get", "put", "delete"}
        assert set(paths[base + "/clusterVersions"]) == {"get"}
    assert set(paths["/v1/nvca/clusters/{clusterId}/jwks"]) == {"put"}
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == 13
    post = paths["/v1/accounts/{ncaId}/clusters"]["post"]
    assert post["description"] == "Requires admin token scope cluster-management."


ROTATED = {"keys": [{"kty": "RSA", "kid": "nvca-2", "n": "sXch", "e": "AQAB", "use": "sig", "alg": "RS256"}]}


async def test_cluster_rotate_replaces_the_jwks(sis: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """``nvcf-cli cluster rotate``: ``PUT /v1/nvca/clusters/{id}/jwks``, on the caller's own cluster."""
    created = await register(sis, admin, jwks={"keys": [{"kty": "RSA", "kid": "nvca-1", "n": "old", "e": "AQAB"}]})
    cluster_id = created["clusterId"]
    rotated = await sis.put(
        f"/v1/nvca/clusters/{cluster_id}/jwks", json={"jwks": ROTATED, "oidcIssuer": "https://nvca.example"},
        headers=admin,
    )  # fmt: skip
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["jwks"] == ROTATED
    stored = (await sis.get(f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster_id}", headers=admin)).json()
    assert (stored["jwks"], stored["oidcIssuer"], stored["region"]) == (ROTATED, "https://nvca.example", "us-east-1")
    # As its JSON text too (the CLI may read a file and send it as a string).
    as_text = await sis.put(f"/v1/nvca/clusters/{cluster_id}/jwks", json={"jwks": json.dumps(ROTATED)}, headers=admin)
    assert as_text.status_code == 200, as_text.text


@pytest.mark.parametrize(
    "body",
    [{}, {"jwks": {}}, {"jwks": {"keys": []}}, {"jwks": {"keys": [{"kid": "no-kty"}]}}, {"jwks": "not json"}],
    ids=["missing", "no keys", "empty keys", "key without kty", "not json"],
)
async def test_a_rotation_without_a_key_set_is_400_and_changes_nothing(
    sis: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any]
) -> None:
    cluster_id = (await register(sis, admin))["clusterId"]
    url = f"/v1/accounts/{DEFAULT_NCA}/clusters/{cluster_id}"
    before = (await sis.get(url, headers=admin)).json()
    response = await sis.put(f"/v1/nvca/clusters/{cluster_id}/jwks", json=body, headers=admin)
    assert_sis_problem(response, 400, "bad-request")
    assert (await sis.get(url, headers=admin)).json() == before
    unknown = await sis.put(f"/v1/nvca/clusters/{uuid.uuid4()}/jwks", json={"jwks": ROTATED}, headers=admin)
    assert_sis_problem(unknown, 404, "not-found")
