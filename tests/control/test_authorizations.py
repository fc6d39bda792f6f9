"""``/v2/nvcf/authorizations/functions…``: sharing, what the other account sees, routing cache, errors."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from gateway.app import Gateway
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from gateway.store.schema import function_authorizations, function_versions
from tests.control.conftest import OPERATOR_SCOPES, OTHER_CLIENT_ID, OTHER_NCA_ID, Minter
from tests.control.helpers import create_function, function_body
from tests.gateway.helpers import assert_problem, create_key, key_body

THIRD_NCA_ID = "third-account"
THIRD_CLIENT_ID = "third-admin-client"
PRIVATE_FIELDS = {"inferenceUrl", "inferencePort", "containerImage", "containerArgs", "health", "healthUri"}
Headers = dict[str, str]


def url(function_id: str, version_id: str | None = None, suffix: str = "") -> str:
    path = f"/v2/nvcf/authorizations/functions/{function_id}"
    if version_id:
        path += f"/versions/{version_id}"
    return path + suffix


def parties(*nca_ids: str) -> dict[str, Any]:
    return {"authorizedParties": [{"ncaId": n} for n in nca_ids]}


def party(nca_id: str, client_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ncaId": nca_id}
    if client_id is not None:
        body["clientId"] = client_id
    return {"authorizedParty": body}


async def share_rows(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(function_authorizations))).scalar_one())


def assert_json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture
async def third_account(gateway: Gateway) -> str:
    await gateway.runtime.accounts.ensure(THIRD_NCA_ID, THIRD_NCA_ID, THIRD_CLIENT_ID)
    return THIRD_NCA_ID


async def authorized_versions(api: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    listed = await api.get("/v2/nvcf/functions?visibility=authorized", headers=headers)
    functions: list[dict[str, Any]] = assert_json(listed)["functions"]
    return functions


async def test_share_function_contract_visibility_and_cache(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers
) -> None:
    dto = await create_function(api, operator)
    fid, vid = dto["id"], dto["versionId"]
    assert await authorized_versions(api, other_admin) == []

    shared = await api.post(url(fid), json=parties(OTHER_NCA_ID), headers=operator)
    assert assert_json(shared) == {
        "function": {"id": fid, "ncaId": "nvcf-default", "authorizedParties": [{"ncaId": OTHER_NCA_ID}]}
    }

    seen = await authorized_versions(api, other_admin)
    assert [f["versionId"] for f in seen] == [vid]
    assert seen[0]["ownedByDifferentAccount"] is True
    assert seen[0]["ncaId"] == "nvcf-default" and seen[0]["name"] == "echo"
    assert PRIVATE_FIELDS.isdisjoint(seen[0])
    got = await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=other_admin)
    assert assert_json(got)["function"]["ownedByDifferentAccount"] is True
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.shared_with_account(OTHER_NCA_ID)
    assert route.shared_with_account(OTHER_NCA_ID, vid)

    # A version added later inherits the function-level share.
    second = await api.post(f"/v2/nvcf/functions/{fid}/versions", json=function_body(name="v2"), headers=operator)
    vid2 = assert_json(second)["function"]["versionId"]
    assert {f["versionId"] for f in await authorized_versions(api, other_admin)} == {vid, vid2}

    listed = assert_json(await api.get(url(fid), headers=operator))
    assert listed == {
        "functions": [
            {"id": fid, "ncaId": "nvcf-default", "versionId": v, "authorizedParties": [{"ncaId": OTHER_NCA_ID}]}
            for v in (vid, vid2)
        ]
    }
    one = assert_json(await api.get(url(fid, vid), headers=operator))
    assert one == {
        "function": {
            "id": fid,
            "ncaId": "nvcf-default",
            "versionId": vid,
            "authorizedParties": [{"ncaId": OTHER_NCA_ID}],
        }
    }
    every = assert_json(await api.get("/v2/nvcf/authorizations/functions", headers=operator))
    assert [f["versionId"] for f in every["functions"]] == [vid, vid2]

    deleted = await api.delete(url(fid), headers=operator)
    assert assert_json(deleted) == {"function": {"id": fid, "ncaId": "nvcf-default"}}
    assert await authorized_versions(api, other_admin) == []
    assert_problem(await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=other_admin), 404)
    route = gateway.runtime.routes.get(fid)
    assert route is not None and not route.shared_with_account(OTHER_NCA_ID)
    assert await share_rows(gateway) == 0
    assert assert_json(await api.get("/v2/nvcf/authorizations/functions", headers=operator)) == {"functions": []}
    after = assert_json(await api.get(url(fid), headers=operator))
    assert [f["authorizedParties"] for f in after["functions"]] == [[], []]


async def test_post_replaces_the_set_and_dedupes(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers, third_account: str
) -> None:
    fid = (await create_function(api, operator))["id"]
    assert_json(await api.post(url(fid), json=parties(OTHER_NCA_ID, third_account), headers=operator))
    replaced = await api.post(url(fid), json=parties(third_account, third_account), headers=operator)
    assert assert_json(replaced)["function"]["authorizedParties"] == [{"ncaId": third_account}]
    assert await share_rows(gateway) == 1
    assert await authorized_versions(api, other_admin) == []
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.shared_with_account(third_account)
    assert not route.shared_with_account(OTHER_NCA_ID)


async def test_client_id_is_checked_and_echoed(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers
) -> None:
    fid = (await create_function(api, operator))["id"]
    body = {"authorizedParties": [{"ncaId": OTHER_NCA_ID, "clientId": OTHER_CLIENT_ID}]}
    shared = assert_json(await api.post(url(fid), json=body, headers=operator))
    assert shared["function"]["authorizedParties"] == [{"ncaId": OTHER_NCA_ID, "clientId": OTHER_CLIENT_ID}]
    assert len(await authorized_versions(api, other_admin)) == 1


async def test_version_level_share(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers, third_account: str
) -> None:
    first = await create_function(api, operator)
    fid, vid = first["id"], first["versionId"]
    second = await api.post(f"/v2/nvcf/functions/{fid}/versions", json=function_body(name="v2"), headers=operator)
    vid2 = assert_json(second)["function"]["versionId"]

    shared = await api.post(url(fid, vid2), json=parties(OTHER_NCA_ID), headers=operator)
    assert assert_json(shared) == {
        "function": {
            "id": fid,
            "ncaId": "nvcf-default",
            "versionId": vid2,
            "authorizedParties": [{"ncaId": OTHER_NCA_ID}],
        }
    }
    assert [f["versionId"] for f in await authorized_versions(api, other_admin)] == [vid2]
    assert_problem(await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=other_admin), 404)
    route = gateway.runtime.routes.get(fid)
    assert route is not None
    assert route.shared_with_account(OTHER_NCA_ID, vid2) and not route.shared_with_account(OTHER_NCA_ID, vid)

    # GET of a version merges function-level (first) and version-level parties; POST answers only its own.
    assert_json(await api.post(url(fid), json=parties(third_account), headers=operator))
    merged = assert_json(await api.get(url(fid, vid2), headers=operator))["function"]["authorizedParties"]
    assert merged == [{"ncaId": third_account}, {"ncaId": OTHER_NCA_ID}]
    assert assert_json(await api.get(url(fid, vid), headers=operator))["function"]["authorizedParties"] == [
        {"ncaId": third_account}
    ]

    deleted = assert_json(await api.delete(url(fid, vid2), headers=operator))
    assert deleted == {"function": {"id": fid, "ncaId": "nvcf-default", "versionId": vid2}}
    assert await authorized_versions(api, other_admin) == []
    route = gateway.runtime.routes.get(fid)
    assert route is not None and not route.shared_with_account(OTHER_NCA_ID)
    assert route.shared_with_account(third_account, vid2)  # the function-level share stays
    assert await share_rows(gateway) == 1


@pytest.mark.parametrize("level", ["function", "version"])
async def test_patch_add_and_remove(
    gateway: Gateway,
    api: httpx.AsyncClient,
    operator: Headers,
    other_admin: Headers,
    third_account: str,
    level: str,
) -> None:
    dto = await create_function(api, operator)
    fid, vid = dto["id"], dto["versionId"] if level == "version" else None
    target = url(fid, vid)
    assert_problem(await api.patch(target + "/add", json=party(OTHER_NCA_ID), headers=operator), 404)
    assert_problem(await api.patch(target + "/remove", json=party(OTHER_NCA_ID), headers=operator), 404)
    assert await share_rows(gateway) == 0

    assert_json(await api.post(target, json=parties(third_account), headers=operator))
    added = assert_json(await api.patch(target + "/add", json=party(OTHER_NCA_ID), headers=operator))
    expected: dict[str, Any] = {"id": fid, "ncaId": "nvcf-default"}
    if vid:
        expected["versionId"] = vid
    assert added == {"function": {**expected, "authorizedParties": [{"ncaId": OTHER_NCA_ID}, {"ncaId": third_account}]}}
    assert len(await authorized_versions(api, other_admin)) == 1
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.shared_with_account(OTHER_NCA_ID)

    assert_problem(await api.patch(target + "/add", json=party(OTHER_NCA_ID), headers=operator), 409, "conflict")
    assert await share_rows(gateway) == 2

    removed = assert_json(await api.patch(target + "/remove", json=party(OTHER_NCA_ID), headers=operator))
    assert removed == {"function": {**expected, "authorizedParties": [{"ncaId": third_account}]}}
    assert await authorized_versions(api, other_admin) == []
    route = gateway.runtime.routes.get(fid)
    assert route is not None and not route.shared_with_account(OTHER_NCA_ID)
    assert_problem(await api.patch(target + "/remove", json=party(OTHER_NCA_ID), headers=operator), 404)
    assert await share_rows(gateway) == 1


INVALID_POST: list[tuple[str, Any]] = [
    ("own account", parties("nvcf-default")),
    ("unknown account", parties("no-such-account")),
    ("wildcard", parties("*")),
    ("empty list", {"authorizedParties": []}),
    ("missing list", {}),
    ("blank ncaId", {"authorizedParties": [{"ncaId": "  "}]}),
    ("missing ncaId", {"authorizedParties": [{"clientId": OTHER_CLIENT_ID}]}),
    ("unknown clientId", {"authorizedParties": [{"ncaId": OTHER_NCA_ID, "clientId": "who"}]}),
    (
        "clientId of another account",
        {"authorizedParties": [{"ncaId": OTHER_NCA_ID, "clientId": DEFAULT_ADMIN_CLIENT_ID}]},
    ),
    ("one bad among good", parties(OTHER_NCA_ID, "nvcf-default")),
    ("not an object", ["x"]),
]


@pytest.mark.parametrize(("case", "body"), INVALID_POST, ids=[c for c, _ in INVALID_POST])
@pytest.mark.parametrize("level", ["function", "version"])
async def test_invalid_share_is_400_and_writes_nothing(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers, level: str, case: str, body: Any
) -> None:
    dto = await create_function(api, operator)
    target = url(dto["id"], dto["versionId"] if level == "version" else None)
    assert_problem(await api.post(target, json=body, headers=operator), 400, "bad-request")
    assert await share_rows(gateway) == 0


INVALID_PATCH: list[tuple[str, Any]] = [
    ("own account", party("nvcf-default")),
    ("unknown account", party("no-such-account")),
    ("wildcard", party("*")),
    ("missing party", {}),
    ("party is a list", {"authorizedParty": [{"ncaId": OTHER_NCA_ID}]}),
    ("unknown clientId", party(OTHER_NCA_ID, "who")),
]


@pytest.mark.parametrize(("case", "body"), INVALID_PATCH, ids=[c for c, _ in INVALID_PATCH])
@pytest.mark.parametrize("op", ["add", "remove"])
async def test_invalid_patch_is_400_and_writes_nothing(
    gateway: Gateway,
    api: httpx.AsyncClient,
    operator: Headers,
    other_admin: Headers,
    third_account: str,
    op: str,
    case: str,
    body: Any,
) -> None:
    fid = (await create_function(api, operator))["id"]
    assert_json(await api.post(url(fid), json=parties(third_account), headers=operator))
    assert_problem(await api.patch(url(fid, suffix="/" + op), json=body, headers=operator), 400, "bad-request")
    assert await share_rows(gateway) == 1
    shared = assert_json(await api.get(url(fid), headers=operator))["functions"][0]["authorizedParties"]
    assert shared == [{"ncaId": third_account}]


async def test_public_function_cannot_be_changed(gateway: Gateway, api: httpx.AsyncClient, operator: Headers) -> None:
    dto = await create_function(api, operator)
    async with gateway.runtime.store.engine.begin() as conn:
        await conn.execute(update(function_versions).values(public=1))
    for target in (url(dto["id"]), url(dto["id"], dto["versionId"])):
        assert_problem(await api.post(target, json=parties(OTHER_NCA_ID), headers=operator), 400)
        assert_problem(await api.delete(target, headers=operator), 400)
    assert await share_rows(gateway) == 0


async def test_credentials_and_scopes(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin: Headers, operator: Headers, mint: Minter
) -> None:
    dto = await create_function(api, operator)
    fid, vid = dto["id"], dto["versionId"]
    calls = [
        ("GET", "/v2/nvcf/authorizations/functions", None),
        ("POST", url(fid), parties(OTHER_NCA_ID)),
        ("GET", url(fid), None),
        ("DELETE", url(fid), None),
        ("PATCH", url(fid, suffix="/add"), party(OTHER_NCA_ID)),
        ("PATCH", url(fid, suffix="/remove"), party(OTHER_NCA_ID)),
        ("POST", url(fid, vid), parties(OTHER_NCA_ID)),
        ("GET", url(fid, vid), None),
        ("DELETE", url(fid, vid), None),
        ("PATCH", url(fid, vid, "/add"), party(OTHER_NCA_ID)),
        ("PATCH", url(fid, vid, "/remove"), party(OTHER_NCA_ID)),
    ]
    token = admin["Authorization"].removeprefix("Bearer ")
    key = (await create_key(keys_client, token))["value"]
    no_scope_jwt = mint(DEFAULT_ADMIN_CLIENT_ID, [s for s in OPERATOR_SCOPES if s != "authorize_clients"])
    for method, path, body in calls:
        problem = assert_problem(await api.request(method, path, json=body), 401)
        assert problem["title"] == "Unauthorized"
        for headers in (admin, {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {no_scope_jwt}"}):
            assert_problem(await api.request(method, path, json=body, headers=headers), 403, "forbidden")


async def test_api_key_with_authorize_clients_scope(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin: Headers, operator: Headers, other_admin: Headers
) -> None:
    fid = (await create_function(api, operator))["id"]
    # The operator token holds authorize_clients; the default admin token could not delegate it.
    token = operator["Authorization"].removeprefix("Bearer ")
    key = (await create_key(keys_client, token, key_body(scopes=["authorize_clients"])))["value"]
    shared = await api.post(url(fid), json=parties(OTHER_NCA_ID), headers={"Authorization": f"Bearer {key}"})
    assert assert_json(shared)["function"]["authorizedParties"] == [{"ncaId": OTHER_NCA_ID}]


async def test_only_the_owner_may_share(
    gateway: Gateway, api: httpx.AsyncClient, operator: Headers, other_admin: Headers, third_account: str
) -> None:
    dto = await create_function(api, operator)
    fid, vid = dto["id"], dto["versionId"]
    # Not shared: another account's function is 404 everywhere.
    for target in (url(fid), url(fid, vid)):
        assert_problem(await api.get(target, headers=other_admin), 404, "not-found")
        assert_problem(await api.post(target, json=parties(third_account), headers=other_admin), 404)
        assert_problem(await api.delete(target, headers=other_admin), 404)
    # Shared with it: still not its own, still 404 (NVCF answers "Not found in account").
    assert_json(await api.post(url(fid), json=parties(OTHER_NCA_ID), headers=operator))
    for target in (url(fid), url(fid, vid)):
        assert_problem(await api.post(target, json=parties(third_account), headers=other_admin), 404)
        assert_problem(await api.patch(target + "/add", json=party(third_account), headers=other_admin), 404)
        assert_problem(await api.delete(target, headers=other_admin), 404)
    assert assert_json(await api.get("/v2/nvcf/authorizations/functions", headers=other_admin)) == {"functions": []}
    assert await share_rows(gateway) == 1


async def test_unknown_and_bad_ids(api: httpx.AsyncClient, operator: Headers) -> None:
    dto = await create_function(api, operator)
    unknown = str(uuid.uuid4())
    for target in (url(unknown), url(unknown, unknown), url(dto["id"], unknown)):
        assert_problem(await api.get(target, headers=operator), 404)
        assert_problem(await api.post(target, json=parties(OTHER_NCA_ID), headers=operator), 404)
        assert_problem(await api.delete(target, headers=operator), 404)
        assert_problem(await api.patch(target + "/add", json=party(OTHER_NCA_ID), headers=operator), 404)
    for target in (url("not-a-uuid"), url(dto["id"], "nope"), url("x", dto["versionId"])):
        assert_problem(await api.get(target, headers=operator), 400)
        assert_problem(await api.post(target, json=parties(OTHER_NCA_ID), headers=operator), 400)
        assert_problem(await api.delete(target, headers=operator), 400)
