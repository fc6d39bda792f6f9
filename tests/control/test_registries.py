"""``/v2/nvcf/registry-credentials`` and ``/v2/nvcf/recognized-registries``."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from gateway.app import Gateway
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from gateway.store.registries import RegistryCredential, RegistryCredentialRepository
from gateway.store.schema import accounts, registry_credentials
from tests.control.conftest import OPERATOR_SCOPES, Minter
from tests.gateway.helpers import assert_problem, create_key, key_body

Headers = dict[str, str]
BASE = "/v2/nvcf/registry-credentials"
DTO_FIELDS = {
    "registryCredentialId",
    "ncaId",
    "registryCredentialName",
    "registryName",
    "registryHostname",
    "artifactTypes",
    "tags",
    "description",
    "provisionedBy",
    "lastUpdatedAt",
    "createdAt",
}
NGC_PASSWORD = "nvapi-registry-plaintext"
DOCKER_PASSWORD = "docker-plaintext-pw"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


NGC_SECRET = b64(f"$oauthtoken:{NGC_PASSWORD}")
DOCKER_SECRET = b64(f"someone:{DOCKER_PASSWORD}")


def ngc_body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "registryHostname": "nvcr.io",
        "secret": {"name": "ngc-cred", "value": NGC_SECRET},
        "artifactTypes": ["CONTAINER"],
        "tags": ["team:a", "prod"],
        "description": "pull images from NGC",
    }
    data.update(overrides)
    return data


def docker_body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "registryHostname": "docker.io",
        "secret": {"name": "hub", "value": DOCKER_SECRET},
        "artifactTypes": ["CONTAINER"],
    }
    data.update(overrides)
    return data


async def rows(gateway: Gateway) -> list[tuple[Any, ...]]:
    async with gateway.runtime.store.engine.connect() as conn:
        result = await conn.execute(select(registry_credentials).order_by(registry_credentials.c.created_at))
        return [tuple(r) for r in result]


async def create(api: httpx.AsyncClient, headers: Headers, data: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(BASE, json=data, headers=headers)
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["registryCredential"]
    return dto


def hidden(text: str) -> bool:
    return all(s not in text for s in (NGC_PASSWORD, NGC_SECRET, DOCKER_PASSWORD, DOCKER_SECRET))


async def test_create_contract(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    response = await api.post(BASE, json=ngc_body(), headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"registryCredential"}
    dto = response.json()["registryCredential"]
    assert set(dto) == DTO_FIELDS
    uuid.UUID(dto["registryCredentialId"])
    assert dto["ncaId"] == "nvcf-default"
    assert dto["registryCredentialName"] == "ngc-cred"
    assert (dto["registryName"], dto["registryHostname"]) == ("NGC Private Registry", "nvcr.io")
    assert dto["artifactTypes"] == ["CONTAINER"]
    assert dto["tags"] == ["team:a", "prod"] and dto["description"] == "pull images from NGC"
    assert dto["provisionedBy"] == "USER"
    assert dto["createdAt"].endswith("Z") and dto["lastUpdatedAt"] == dto["createdAt"]
    assert hidden(response.text)
    async with gateway.runtime.store.engine.connect() as conn:
        row = (await conn.execute(select(registry_credentials))).one()
    assert hidden(row.ciphertext) and hidden(str(row.spec))
    context = f"registry:{dto['registryCredentialId']}:ngc-cred"
    assert gateway.runtime.secretbox.open_sealed(row.ciphertext, context) == NGC_SECRET


async def test_optional_fields_omitted_and_hosts(api: httpx.AsyncClient, operator: Headers) -> None:
    dto = await create(api, operator, docker_body(registryHostname="registry-1.docker.io"))
    assert "tags" not in dto and "description" not in dto
    assert dto["registryName"] == "Docker Hub" and dto["registryHostname"] == "registry-1.docker.io"
    ecr = await create(
        api,
        operator,
        docker_body(
            registryHostname="123456789012.dkr.ecr.us-west-2.amazonaws.com", artifactTypes=["helm", "Container"]
        ),
    )
    assert ecr["registryName"] == "Amazon ECR" and ecr["artifactTypes"] == ["CONTAINER", "HELM"]
    model = await create(
        api,
        operator,
        ngc_body(registryHostname="api.ngc.nvidia.com", artifactTypes=["RESOURCE", "MODEL"], tags=None),
    )
    assert model["artifactTypes"] == ["MODEL", "RESOURCE"] and "tags" not in model


async def test_list_filters_get(api: httpx.AsyncClient, operator: Headers) -> None:
    assert (await api.get(BASE, headers=operator)).json() == {"registryCredentials": []}
    ngc = await create(api, operator, ngc_body())
    hub = await create(api, operator, docker_body(artifactTypes=["CONTAINER", "HELM"]))
    api_ngc = await create(
        api, operator, ngc_body(registryHostname="api.ngc.nvidia.com", artifactTypes=["MODEL", "RESOURCE"])
    )
    listed = await api.get(BASE, headers=operator)
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    assert listed.json() == {"registryCredentials": [ngc, hub, api_ngc]}
    assert hidden(listed.text)

    async def ids(query: str) -> list[str]:
        response = await api.get(f"{BASE}?{query}", headers=operator)
        assert response.status_code == 200, response.text
        return [c["registryCredentialId"] for c in response.json()["registryCredentials"]]

    assert await ids("artifactType=HELM") == [hub["registryCredentialId"]]
    assert await ids("artifactType=model,resource") == [api_ngc["registryCredentialId"]]
    both = [hub["registryCredentialId"], api_ngc["registryCredentialId"]]
    assert await ids("artifactType=HELM&artifactType=MODEL") == both
    assert await ids("artifactType=CONTAINER&provisionedBy=system") == []
    assert await ids("provisionedBy=SYSTEM,USER") == [ngc["registryCredentialId"], *both]
    assert_problem(await api.get(f"{BASE}?artifactType=IMAGE", headers=operator), 400)
    assert_problem(await api.get(f"{BASE}?artifactType=HELM&artifactType=nope", headers=operator), 400)
    assert_problem(await api.get(f"{BASE}?provisionedBy=ADMIN", headers=operator), 400)

    got = await api.get(f"{BASE}/{hub['registryCredentialId']}", headers=operator)
    assert got.status_code == 200 and got.json() == {"registryCredential": hub}


async def test_patch(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    hub = await create(api, operator, docker_body())
    path = f"{BASE}/{hub['registryCredentialId']}"
    added = await api.patch(path, json={"artifactTypeEnums": ["helm"]}, headers=operator)
    assert added.status_code == 200 and added.headers["content-type"] == "application/json"
    dto = added.json()["registryCredential"]
    assert dto["artifactTypes"] == ["CONTAINER", "HELM"] and dto["registryCredentialName"] == "hub"
    assert dto["createdAt"] == hub["createdAt"] and dto["lastUpdatedAt"] > hub["lastUpdatedAt"]

    new_secret = b64("other:rotated-plaintext")
    rotated = await api.patch(path, json={"secret": {"name": "hub-2", "value": new_secret}}, headers=operator)
    assert rotated.status_code == 200 and "rotated-plaintext" not in rotated.text and new_secret not in rotated.text
    assert rotated.json()["registryCredential"]["registryCredentialName"] == "hub-2"
    assert rotated.json()["registryCredential"]["artifactTypes"] == ["CONTAINER", "HELM"]
    [row] = await rows(gateway)
    async with gateway.runtime.store.engine.connect() as conn:
        stored = (await conn.execute(select(registry_credentials))).one()
    assert stored.secret_name == "hub-2" and "rotated-plaintext" not in stored.ciphertext
    context = f"registry:{hub['registryCredentialId']}:hub-2"
    assert gateway.runtime.secretbox.open_sealed(stored.ciphertext, context) == new_secret
    assert (await api.get(path, headers=operator)).json() == rotated.json()


INVALID_PATCH: list[tuple[str, Any, int]] = [
    ("empty body", {}, 400),
    ("empty types and no secret", {"artifactTypeEnums": []}, 400),
    ("type not recognized for host", {"artifactTypeEnums": ["MODEL"]}, 400),
    ("bad type", {"artifactTypeEnums": ["IMAGE"]}, 400),
    ("secret not base64", {"secret": {"name": "hub", "value": "not base64!"}}, 400),
    ("secret without colon", {"secret": {"name": "hub", "value": b64("justone")}}, 400),
    ("secret object", {"secret": {"name": "hub", "value": {"u": "p"}}}, 400),
    ("secret bad name", {"secret": {"name": "-x", "value": DOCKER_SECRET}}, 400),
    ("name of another credential", {"secret": {"name": "taken", "value": DOCKER_SECRET}}, 409),
]


@pytest.mark.parametrize(("case", "data", "status"), INVALID_PATCH, ids=[c for c, _, _ in INVALID_PATCH])
async def test_invalid_patch_changes_nothing(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, case: str, data: Any, status: int
) -> None:
    hub = await create(api, operator, docker_body())
    await create(api, operator, docker_body(secret={"name": "taken", "value": DOCKER_SECRET}))
    before = await rows(gateway)
    assert_problem(await api.patch(f"{BASE}/{hub['registryCredentialId']}", json=data, headers=operator), status)
    assert await rows(gateway) == before


async def test_delete(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    hub = await create(api, operator, docker_body())
    path = f"{BASE}/{hub['registryCredentialId']}"
    deleted = await api.delete(path, headers=operator)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(await api.get(path, headers=operator), 404)
    assert_problem(await api.delete(path, headers=operator), 404)
    assert await rows(gateway) == []


async def test_system_provisioned_cannot_be_deleted(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers
) -> None:
    credential_id = str(uuid.uuid4())
    spec = {
        "registryName": "NGC Private Registry",
        "registryHostname": "nvcr.io",
        "artifactTypes": ["CONTAINER"],
        "provisionedBy": "SYSTEM",
    }
    sealed = gateway.runtime.secretbox.seal(NGC_SECRET, f"registry:{credential_id}:system")
    await RegistryCredentialRepository(gateway.runtime.store.engine).insert(
        RegistryCredential(credential_id, "nvcf-default", spec, "system", sealed, 1, 1)
    )
    listed = await api.get(f"{BASE}?provisionedBy=SYSTEM", headers=operator)
    assert [c["provisionedBy"] for c in listed.json()["registryCredentials"]] == ["SYSTEM"]
    assert_problem(await api.delete(f"{BASE}/{credential_id}", headers=operator), 400, "bad-request")
    assert len(await rows(gateway)) == 1


INVALID_CREATE: list[tuple[str, Any]] = [
    ("unrecognized registry", docker_body(registryHostname="registry.example.com")),
    ("type not recognized for host", ngc_body(artifactTypes=["CONTAINER", "MODEL"])),
    ("bad hostname", docker_body(registryHostname="-bad-.io")),
    ("hostname with scheme", docker_body(registryHostname="https://docker.io")),
    ("hostname too short", docker_body(registryHostname="a.b")),
    ("missing hostname", {k: v for k, v in docker_body().items() if k != "registryHostname"}),
    ("secret not base64", docker_body(secret={"name": "hub", "value": "%%%"})),
    ("secret without colon", docker_body(secret={"name": "hub", "value": b64("userpass")})),
    ("secret two colons", docker_body(secret={"name": "hub", "value": b64("a:b:c")})),
    ("secret blank user", docker_body(secret={"name": "hub", "value": b64(" :pw")})),
    ("secret blank password", docker_body(secret={"name": "hub", "value": b64("user:")})),
    ("secret as object", docker_body(secret={"name": "hub", "value": {"user": "u"}})),
    ("ngc without $oauthtoken", ngc_body(secret={"name": "n", "value": b64("me:pw")})),
    ("missing secret", {k: v for k, v in docker_body().items() if k != "secret"}),
    ("secret bad name", docker_body(secret={"name": "a b", "value": DOCKER_SECRET})),
    ("empty artifact types", docker_body(artifactTypes=[])),
    ("missing artifact types", {k: v for k, v in docker_body().items() if k != "artifactTypes"}),
    ("bad artifact type", docker_body(artifactTypes=["IMAGE"])),
    ("too many tags", docker_body(tags=[f"t{i}" for i in range(65)])),
    ("bad tag", docker_body(tags=["a b"])),
    ("tag too long", docker_body(tags=["t" * 129])),
    ("description too long", docker_body(description="d" * 257)),
    ("not an object", ["x"]),
]


@pytest.mark.parametrize(("case", "data"), INVALID_CREATE, ids=[c for c, _ in INVALID_CREATE])
async def test_invalid_create_400_nothing_written(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, case: str, data: Any
) -> None:
    assert_problem(await api.post(BASE, json=data, headers=operator), 400, "bad-request")
    assert await rows(gateway) == []


async def test_unique_hostname_and_name(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    await create(api, operator, docker_body())
    assert_problem(await api.post(BASE, json=docker_body(), headers=operator), 409, "conflict")
    await create(api, operator, docker_body(registryHostname="ghcr.io"))  # same name, other host
    await create(api, operator, docker_body(secret={"name": "hub-2", "value": DOCKER_SECRET}))
    assert len(await rows(gateway)) == 3


async def test_account_limit(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    async with gateway.runtime.store.engine.begin() as conn:
        await conn.execute(
            update(accounts)
            .where(accounts.c.nca_id == "nvcf-default")
            .values(limits={"maxRegistryCredentialsAllowed": 1})
        )
    await create(api, operator, docker_body())
    response = await api.post(BASE, json=docker_body(registryHostname="ghcr.io"), headers=operator)
    assert "maximum" in assert_problem(response, 400)["detail"]
    assert len(await rows(gateway)) == 1


async def test_recognized_registries(api: httpx.AsyncClient, operator: Headers) -> None:
    response = await api.get("/v2/nvcf/recognized-registries", headers=operator)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    data = response.json()
    assert set(data) == {"recognizedRegistries"}
    registries = data["recognizedRegistries"]
    assert set(registries) == {"CONTAINER", "HELM", "MODEL", "RESOURCE"}
    for entries in registries.values():
        assert entries and all(set(e) == {"name", "hostname"} for e in entries)
        assert [e["name"] for e in entries] == sorted(e["name"] for e in entries)
    assert {"name": "NGC Private Registry", "hostname": "nvcr.io"} in registries["CONTAINER"]
    assert {"name": "Docker Hub", "hostname": "docker.io"} in registries["CONTAINER"]
    assert {"name": "NGC Private Registry", "hostname": "helm.ngc.nvidia.com"} in registries["HELM"]
    assert {"name": "NGC Private Registry", "hostname": "api.ngc.nvidia.com"} in registries["MODEL"]
    assert registries["RESOURCE"] == [{"name": "NGC Private Registry", "hostname": "api.ngc.nvidia.com"}]


async def test_access(
    gateway: Gateway,
    api: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    admin: Headers,
    operator: Headers,
    other_admin: Headers,
    mint: Minter,
) -> None:
    hub = await create(api, operator, docker_body())
    one = f"{BASE}/{hub['registryCredentialId']}"
    token = admin["Authorization"].removeprefix("Bearer ")
    function_key = (await create_key(keys_client, token))["value"]
    no_scope = mint(DEFAULT_ADMIN_CLIENT_ID, [s for s in OPERATOR_SCOPES if s != "manage_registry_credentials"])
    calls: list[tuple[str, str, Any]] = [
        ("POST", BASE, docker_body(registryHostname="ghcr.io")),
        ("GET", BASE, None),
        ("GET", one, None),
        ("PATCH", one, {"artifactTypeEnums": ["HELM"]}),
        ("DELETE", one, None),
        ("GET", "/v2/nvcf/recognized-registries", None),
    ]
    for method, path, data in calls:
        assert_problem(await api.request(method, path, json=data), 401)
        for bearer in (function_key, no_scope):
            headers = {"Authorization": f"Bearer {bearer}"}
            assert_problem(await api.request(method, path, json=data, headers=headers), 403, "forbidden")
    assert (await api.get(BASE, headers=other_admin)).json() == {"registryCredentials": []}
    for method, data in (("GET", None), ("PATCH", {"artifactTypeEnums": ["HELM"]}), ("DELETE", None)):
        assert_problem(await api.request(method, one, json=data, headers=other_admin), 404, "not-found")
        unknown = f"{BASE}/{uuid.uuid4()}"
        assert_problem(await api.request(method, unknown, json=data, headers=operator), 404)
        assert_problem(await api.request(method, f"{BASE}/not-a-uuid", json=data, headers=operator), 400)
    assert len(await rows(gateway)) == 1
    key = (await create_key(keys_client, token, key_body(scopes=["manage_registry_credentials"])))["value"]
    listed = await api.get(BASE, headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200 and listed.json() == {"registryCredentials": [hub]}
