"""``/v2/nvcf/accounts…`` and ``/v2/nvcf/clients/{clientId}``: contract, JWT-only rules, client mapping."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from gateway.problems import BadRequest
from gateway.services.functions.accounts import DEFAULT_LIMITS, check_function_quota
from gateway.store.schema import accounts
from tests.control.conftest import OPERATOR_SCOPES, OTHER_NCA_ID, Minter
from tests.control.helpers import create_function, function_body
from tests.gateway.helpers import admin_token, assert_problem, create_key, key_body

ACCOUNT_DTO_FIELDS = {
    "ncaId",
    "adminClientIds",
    "name",
    "maxFunctionsAllowed",
    "maxTasksAllowed",
    "maxTelemetriesAllowed",
    "maxRegistryCredentialsAllowed",
    "lastUpdatedAt",
}
DETAILS_FIELDS = {
    "ncaId",
    "clientIds",
    "name",
    "maxFunctionsAllowed",
    "maxTasksAllowed",
    "maxTelemetriesAllowed",
    "maxRegistryCredentialsAllowed",
    "currentNumberFunctions",
    "lastUpdatedAt",
}
REGISTRY_PASSWORD = "s3cr3t-registry-password"


def account_body(**overrides: Any) -> dict[str, Any]:
    """What the self-hosted account-bootstrap script sends (without registry credentials)."""
    body: dict[str, Any] = {
        "name": "team-a",
        "adminClientId": "team-a-client",
        "maxFunctionsAllowed": 10,
        "maxTasksAllowed": 10,
        "maxTelemetriesAllowed": 5,
        "maxRegistryCredentialsAllowed": 3,
    }
    body.update(overrides)
    return body


def registry_credential(**overrides: Any) -> dict[str, Any]:
    secret = base64.b64encode(f"$oauthtoken:{REGISTRY_PASSWORD}".encode()).decode()
    credential: dict[str, Any] = {
        "registryHostname": "nvcr.io",
        "secret": {"name": "ngc-registry", "value": secret},
        "artifactTypes": ["CONTAINER", "HELM"],
    }
    credential.update(overrides)
    return credential


async def account_rows(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def create_account(
    api: httpx.AsyncClient, headers: dict[str, str], nca_id: str = "team-a", **overrides: Any
) -> dict[str, Any]:
    response = await api.post(f"/v2/nvcf/accounts/{nca_id}", json=account_body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["account"]
    return dto


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def setup_key(keys_client: httpx.AsyncClient, scopes: list[str]) -> dict[str, str]:
    """An API key of the default account with the given scopes, made with an operator token holding them
    (a key never holds a scope its creator cannot delegate: ``gateway.auth.authority``)."""
    token = await admin_token(keys_client, [*ADMIN_DEFAULT_SCOPES, *scopes])
    key = await create_key(keys_client, token, key_body(scopes=scopes))
    return bearer(key["value"])


# --- list and get ------------------------------------------------------------------------------


async def test_list_accounts_contains_the_default_account(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await api.get("/v2/nvcf/accounts", headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"cloudAccounts"}
    [default] = [a for a in body["cloudAccounts"] if a["ncaId"] == "nvcf-default"]
    assert set(default) == ACCOUNT_DTO_FIELDS
    assert default["adminClientIds"] == ["admin-issuer-proxy"]
    assert default["name"] == "nvcf-default"
    assert default["maxFunctionsAllowed"] == DEFAULT_LIMITS["maxFunctionsAllowed"]
    assert default["maxTelemetriesAllowed"] == DEFAULT_LIMITS["maxTelemetriesAllowed"]


async def test_account_endpoints_need_account_setup(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # The default admin token has no account_setup scope.
    assert_problem(await api.get("/v2/nvcf/accounts", headers=admin), 403)
    assert_problem(await api.get("/v2/nvcf/accounts/nvcf-default", headers=admin), 403)
    assert_problem(await api.post("/v2/nvcf/accounts/team-a", json=account_body(), headers=admin), 403)
    assert_problem(await api.get("/v2/nvcf/clients/admin-issuer-proxy", headers=admin), 403)
    assert_problem(await api.get("/v2/nvcf/accounts"), 401)


async def test_get_account_details(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    await create_function(api, operator)
    response = await api.get("/v2/nvcf/accounts/nvcf-default", headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"account"}
    details = response.json()["account"]
    assert set(details) == DETAILS_FIELDS
    assert details["ncaId"] == "nvcf-default"
    assert details["clientIds"] == ["admin-issuer-proxy"]
    assert details["currentNumberFunctions"] == 1


async def test_get_unknown_account_is_404(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    assert_problem(await api.get("/v2/nvcf/accounts/no-such-account", headers=operator), 404)


# --- create --------------------------------------------------------------------------------------


async def test_create_account_returns_account_dto(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway
) -> None:
    response = await api.post("/v2/nvcf/accounts/team-a", json=account_body(), headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"account"}
    dto = response.json()["account"]
    assert set(dto) == ACCOUNT_DTO_FIELDS
    assert dto["ncaId"] == "team-a"
    assert dto["name"] == "team-a"
    assert dto["adminClientIds"] == ["team-a-client"]
    assert (dto["maxFunctionsAllowed"], dto["maxTasksAllowed"]) == (10, 10)
    assert (dto["maxTelemetriesAllowed"], dto["maxRegistryCredentialsAllowed"]) == (5, 3)
    listed = (await api.get("/v2/nvcf/accounts", headers=operator)).json()["cloudAccounts"]
    assert {a["ncaId"] for a in listed} == {"nvcf-default", "team-a"}
    account = await gateway.runtime.accounts.by_admin_client("team-a-client")
    assert account is not None and account.nca_id == "team-a"


async def test_create_account_minimal_body_uses_default_limits(
    api: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await api.post("/v2/nvcf/accounts/team-b", json={"name": "team-b"}, headers=operator)
    assert response.status_code == 200
    dto = response.json()["account"]
    assert dto["adminClientIds"] == []
    assert {k: dto[k] for k in DEFAULT_LIMITS} == DEFAULT_LIMITS


async def test_create_account_with_registry_credentials_keeps_secret_sealed(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway
) -> None:
    body = account_body(registryCredentials=[registry_credential()])
    response = await api.post("/v2/nvcf/accounts/team-a", json=body, headers=operator)
    assert response.status_code == 200
    assert (
        REGISTRY_PASSWORD not in response.text
        and body["registryCredentials"][0]["secret"]["value"] not in response.text
    )
    details = await api.get("/v2/nvcf/accounts/team-a", headers=operator)
    assert details.status_code == 200
    assert details.json()["account"]["registryCredentials"] == [
        {
            "registryHostname": "nvcr.io",
            "artifactTypes": ["CONTAINER", "HELM"],
            "secret": {"name": "ngc-registry"},
            "provisionedBy": "SYSTEM",
        }
    ]
    assert body["registryCredentials"][0]["secret"]["value"] not in details.text
    async with gateway.runtime.store.engine.connect() as conn:
        stored = (await conn.execute(select(accounts.c.limits).where(accounts.c.nca_id == "team-a"))).scalar_one()
    assert body["registryCredentials"][0]["secret"]["value"] not in str(stored)


async def test_create_account_is_jwt_only(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, gateway: Gateway
) -> None:
    key = await setup_key(keys_client, ["account_setup", "invoke_function"])
    before = await account_rows(gateway)
    response = await api.post("/v2/nvcf/accounts/nvcf-default", json=account_body(), headers=key)
    assert_problem(response, 403)
    assert_problem(await api.delete("/v2/nvcf/accounts/nvcf-default", headers=key), 403)
    assert await account_rows(gateway) == before


async def test_duplicate_account_is_409(api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway) -> None:
    await create_account(api, operator)
    before = await account_rows(gateway)
    again = await api.post("/v2/nvcf/accounts/team-a", json=account_body(adminClientId="another"), headers=operator)
    body = assert_problem(again, 409)
    assert body["detail"] == "Account with ncaId 'team-a' already exists"
    # The bootstrap re-run (same body) is a 409 too, which the script treats as success.
    assert_problem(await api.post("/v2/nvcf/accounts/team-a", json=account_body(), headers=operator), 409)
    assert await account_rows(gateway) == before
    assert await gateway.runtime.accounts.by_admin_client("another") is None


async def test_client_of_another_account_is_409(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway
) -> None:
    before = await account_rows(gateway)
    body = account_body(adminClientId="admin-issuer-proxy")
    response = await api.post("/v2/nvcf/accounts/team-a", json=body, headers=operator)
    assert assert_problem(response, 409)["detail"] == "Client with id 'admin-issuer-proxy' already exists"
    assert await account_rows(gateway) == before


@pytest.mark.parametrize("nca_id", ["-leading-dash", "bad$id", "a" * 65, "_x", "sp%20ace"])
async def test_bad_nca_id_is_400(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway, nca_id: str
) -> None:
    before = await account_rows(gateway)
    assert_problem(await api.post(f"/v2/nvcf/accounts/{nca_id}", json=account_body(), headers=operator), 400)
    assert_problem(await api.get(f"/v2/nvcf/accounts/{nca_id}", headers=operator), 400)
    assert await account_rows(gateway) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "abc"},
        {"name": "a" * 37},
        {"name": "-team"},
        {"name": "team a"},
        account_body(maxFunctionsAllowed=0),
        account_body(maxTasksAllowed=-1),
        account_body(maxTelemetriesAllowed=26),
        account_body(maxRegistryCredentialsAllowed=26),
        account_body(maxFunctionsAllowed="many"),
        account_body(adminClientId="has space"),
        account_body(registryCredentials=[registry_credential(), registry_credential(artifactTypes=["HELM"])]),
        account_body(registryCredentials=[registry_credential(registryHostname="not a host")]),
        account_body(registryCredentials=[registry_credential(artifactTypes=[])]),
        account_body(registryCredentials=[registry_credential(artifactTypes=["IMAGES"])]),
        account_body(registryCredentials=[registry_credential(secret={"name": "x", "value": "not-base64!"})]),
        account_body(registryCredentials=[registry_credential(secret={"name": "x", "value": {"user": "u"}})]),
        account_body(registryCredentials=[registry_credential(secret={"name": "x", "value": "dXNlcm9ubHk="})]),
        [],
    ],
)
async def test_bad_create_bodies_are_400_and_write_nothing(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway, body: Any
) -> None:
    before = await account_rows(gateway)
    response = await api.post("/v2/nvcf/accounts/team-a", json=body, headers=operator)
    problem = assert_problem(response, 400)
    assert problem["instance"] == "/v2/nvcf/accounts/team-a"
    assert await account_rows(gateway) == before


async def test_malformed_json_is_400(api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway) -> None:
    before = await account_rows(gateway)
    headers = {**operator, "Content-Type": "application/json"}
    assert_problem(await api.post("/v2/nvcf/accounts/team-a", content=b"{", headers=headers), 400)
    assert await account_rows(gateway) == before


# --- update --------------------------------------------------------------------------------------


async def test_update_account_limits_and_name(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    await create_account(api, operator)
    response = await api.patch(
        "/v2/nvcf/accounts/team-a", json={"maxFunctionsAllowed": 50, "name": "team-alpha"}, headers=operator
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    dto = response.json()["account"]
    assert set(dto) == ACCOUNT_DTO_FIELDS
    assert (dto["name"], dto["maxFunctionsAllowed"], dto["maxTasksAllowed"]) == ("team-alpha", 50, 10)
    zero = await api.patch("/v2/nvcf/accounts/team-a", json={"maxTasksAllowed": 0}, headers=operator)
    assert zero.status_code == 200 and zero.json()["account"]["maxTasksAllowed"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"maxTelemetriesAllowed": 51},
        {"maxRegistryCredentialsAllowed": 51},
        {"maxFunctionsAllowed": -1},
    ],
)
async def test_bad_update_bodies_are_400(api: httpx.AsyncClient, operator: dict[str, str], body: Any) -> None:
    before = (await api.get("/v2/nvcf/accounts/nvcf-default", headers=operator)).json()
    assert_problem(await api.patch("/v2/nvcf/accounts/nvcf-default", json=body, headers=operator), 400)
    assert (await api.get("/v2/nvcf/accounts/nvcf-default", headers=operator)).json() == before


async def test_update_unknown_account_is_404(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await api.patch("/v2/nvcf/accounts/nobody", json={"maxFunctionsAllowed": 3}, headers=operator)
    assert_problem(response, 404)


async def test_api_key_is_locked_to_its_account(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    await create_account(api, operator)
    key = await setup_key(keys_client, ["account_setup"])
    listed = await api.get("/v2/nvcf/accounts", headers=key)
    assert listed.status_code == 200
    assert [a["ncaId"] for a in listed.json()["cloudAccounts"]] == ["nvcf-default"]
    assert (await api.get("/v2/nvcf/accounts/nvcf-default", headers=key)).status_code == 200
    patched = await api.patch("/v2/nvcf/accounts/nvcf-default", json={"maxFunctionsAllowed": 7}, headers=key)
    assert patched.status_code == 200 and patched.json()["account"]["maxFunctionsAllowed"] == 7
    assert_problem(await api.get("/v2/nvcf/accounts/team-a", headers=key), 403)
    assert_problem(await api.patch("/v2/nvcf/accounts/team-a", json={"maxFunctionsAllowed": 7}, headers=key), 403)
    assert_problem(await api.get("/v2/nvcf/clients/team-a-client", headers=key), 404)
    client = await api.get("/v2/nvcf/clients/admin-issuer-proxy", headers=key)
    assert client.status_code == 200


# --- clients -------------------------------------------------------------------------------------


async def test_get_client(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await api.get("/v2/nvcf/clients/admin-issuer-proxy", headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "client": {"clientId": "admin-issuer-proxy", "ncaId": "nvcf-default", "name": "nvcf-default"}
    }
    assert_problem(await api.get("/v2/nvcf/clients/unknown-client", headers=operator), 404)


async def test_associated_client_maps_jwts_to_the_account(
    api: httpx.AsyncClient, operator: dict[str, str], mint: Minter
) -> None:
    await create_account(api, operator)
    token = bearer(mint("ci-robot", ["register_function", "list_functions"]))
    unmapped = await api.post("/v2/nvcf/functions", json=function_body(), headers=token)
    assert assert_problem(unmapped, 404)["detail"] == "Unknown client_id"

    associated = await api.patch(
        "/v2/nvcf/accounts/team-a/clients/associate", json={"adminClientId": "ci-robot"}, headers=operator
    )
    assert associated.status_code == 200
    assert associated.headers["content-type"] == "application/json"
    dto = associated.json()["account"]
    assert set(dto) == ACCOUNT_DTO_FIELDS
    assert dto["adminClientIds"] == ["team-a-client", "ci-robot"]
    client = await api.get("/v2/nvcf/clients/ci-robot", headers=operator)
    assert client.json() == {"client": {"clientId": "ci-robot", "ncaId": "team-a", "name": "team-a"}}

    # The very same token (its principal was cached as unmapped) now creates in team-a.
    created = await api.post("/v2/nvcf/functions", json=function_body(), headers=token)
    assert created.status_code == 200, created.text
    assert created.json()["function"]["ncaId"] == "team-a"

    dissociated = await api.patch(
        "/v2/nvcf/accounts/team-a/clients/disassociate", json={"adminClientId": "ci-robot"}, headers=operator
    )
    assert dissociated.status_code == 200
    assert dissociated.json()["account"]["adminClientIds"] == ["team-a-client"]
    again = await api.post("/v2/nvcf/functions", json=function_body(), headers=token)
    assert assert_problem(again, 404)["detail"] == "Unknown client_id"
    assert_problem(await api.get("/v2/nvcf/clients/ci-robot", headers=operator), 404)


async def test_disassociating_the_admin_client_and_associating_again(
    api: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    await create_account(api, operator)
    path = "/v2/nvcf/accounts/team-a/clients/"
    gone = await api.patch(path + "disassociate", json={"adminClientId": "team-a-client"}, headers=operator)
    assert gone.status_code == 200 and gone.json()["account"]["adminClientIds"] == []
    back = await api.patch(path + "associate", json={"adminClientId": "team-a-client"}, headers=operator)
    assert back.status_code == 200 and back.json()["account"]["adminClientIds"] == ["team-a-client"]


async def test_client_belongs_to_one_account_only(
    api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway
) -> None:
    await create_account(api, operator)
    path = "/v2/nvcf/accounts/team-a/clients/"
    taken = await api.patch(path + "associate", json={"adminClientId": "admin-issuer-proxy"}, headers=operator)
    detail = assert_problem(taken, 409)["detail"]
    assert detail == "Client 'admin-issuer-proxy' already associated with NVIDIA Cloud Account 'nvcf-default'"
    same = await api.patch(path + "associate", json={"adminClientId": "team-a-client"}, headers=operator)
    assert_problem(same, 409)
    account = await gateway.runtime.accounts.get("team-a")
    assert account is not None and account.client_ids == ["team-a-client"]


async def test_association_errors(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    await create_account(api, operator)
    base = "/v2/nvcf/accounts/"
    not_here = await api.patch(
        base + "team-a/clients/disassociate", json={"adminClientId": "admin-issuer-proxy"}, headers=operator
    )
    assert assert_problem(not_here, 400)["detail"] == (
        "Client 'admin-issuer-proxy' is not associated with NVIDIA Cloud Account 'team-a'"
    )
    unknown_client = await api.patch(
        base + "team-a/clients/disassociate", json={"adminClientId": "nobody"}, headers=operator
    )
    assert_problem(unknown_client, 404)
    unknown_account = await api.patch(
        base + "no-account/clients/associate", json={"adminClientId": "fresh"}, headers=operator
    )
    assert_problem(unknown_account, 404)
    for body in ({}, {"adminClientId": ""}, {"adminClientId": "two words"}, {"adminClientId": 5}):
        response = await api.patch(base + "team-a/clients/associate", json=body, headers=operator)
        assert_problem(response, 400)


# --- delete --------------------------------------------------------------------------------------


async def test_delete_account(api: httpx.AsyncClient, operator: dict[str, str], mint: Minter) -> None:
    await create_account(api, operator)
    token = bearer(mint("team-a-client", ["register_function", "list_functions"]))
    assert (await api.get("/v2/nvcf/functions", headers=token)).status_code == 200  # principal cached, mapped
    response = await api.delete("/v2/nvcf/accounts/team-a", headers=operator)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.get("/v2/nvcf/accounts/team-a", headers=operator), 404)
    assert assert_problem(await api.get("/v2/nvcf/functions", headers=token), 404)["detail"] == "Unknown client_id"
    assert_problem(await api.delete("/v2/nvcf/accounts/team-a", headers=operator), 404)


async def test_delete_account_with_functions_is_refused(
    api: httpx.AsyncClient, operator: dict[str, str], other_admin: dict[str, str], gateway: Gateway
) -> None:
    await create_function(api, other_admin)
    before = await account_rows(gateway)
    response = await api.delete(f"/v2/nvcf/accounts/{OTHER_NCA_ID}", headers=operator)
    detail = assert_problem(response, 400)["detail"]
    assert detail == f"Account '{OTHER_NCA_ID}': Cannot delete account with functions defined"
    assert await account_rows(gateway) == before


async def test_default_account_cannot_be_deleted(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    assert_problem(await api.delete("/v2/nvcf/accounts/nvcf-default", headers=operator), 400)
    assert (await api.get("/v2/nvcf/accounts/nvcf-default", headers=operator)).status_code == 200


async def test_super_admin_jwt_need_not_map_to_an_account(
    api: httpx.AsyncClient, mint: Minter, gateway: Gateway
) -> None:
    """NVCF: JWTs with account_setup work across accounts even when their sub maps to none."""
    token = bearer(mint("bootstrap-job", list(OPERATOR_SCOPES)))
    response = await api.post(
        "/v2/nvcf/accounts/team-c", json=account_body(adminClientId="team-c-admin"), headers=token
    )
    assert response.status_code == 200
    assert (await api.get("/v2/nvcf/accounts", headers=token)).status_code == 200


# --- quota helper ----------------------------------------------------------------------------------


async def test_function_quota_helper(api: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway) -> None:
    await check_function_quota(gateway.runtime, "nvcf-default")
    patched = await api.patch("/v2/nvcf/accounts/nvcf-default", json={"maxFunctionsAllowed": 1}, headers=operator)
    assert patched.status_code == 200
    await check_function_quota(gateway.runtime, "nvcf-default")
    await create_function(api, operator)
    with pytest.raises(BadRequest) as raised:
        await check_function_quota(gateway.runtime, "nvcf-default")
    assert raised.value.detail == (
        "Account 'nvcf-default': Reached or exceeded the max limit for the number of functions allowed: 1."
    )
