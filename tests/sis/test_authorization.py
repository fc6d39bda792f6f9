"""Authorization matrix of SIS: every endpoint (both prefixes) × every kind of credential.

``cluster-management`` is a JWT-only scope (reference §11): the default admin JWT of the
account succeeds; a JWT without the scope, and every API key (function key, task key, and a
functions key whose policy lists ``cluster-management``) get 403; no bearer is 401 with
``WWW-Authenticate: Bearer``; a garbage bearer 401; an admin JWT of another account gets 404 for
the account and its clusters. Every refused call leaves the clusters table unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.auth.scopes import (
    ADMIN_DEFAULT_SCOPES,
    FUNCTION_KEY_DEFAULT_SCOPES,
    TASK_KEY_DEFAULT_SCOPES,
    TASKS_PRODUCT,
)
from gateway.services.clusters.clusters import ENDPOINTS
from gateway.store import schema
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, create_key, key_body
from tests.sis.conftest import Minter
from tests.sis.helpers import DEFAULT_NCA, assert_sis_problem, bearer, cluster_body, register

OPERATIONS = [(e.method, e.path) for e in ENDPOINTS]
ROTATED_JWKS = {
    "keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "rotated", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]
}


@dataclass(frozen=True)
class Case:
    name: str
    status: int  # for a refused credential; 0: the owner's success


CASES = [
    Case("admin JWT", 0),
    Case("no bearer", 401),
    Case("garbage bearer", 401),
    Case("JWT without cluster-management", 403),
    Case("function API key", 403),
    Case("task API key", 403),
    Case("API key with cluster-management", 403),
    Case("admin JWT of another account", 404),
]

Headers = Callable[[], Awaitable[dict[str, str]]]


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method == "POST":
        return cluster_body(clusterName="matrix-new")
    if path.endswith("/jwks"):
        return {"jwks": ROTATED_JWKS}
    if method == "PUT":
        return {"region": "eu-central-1"}
    return None


async def _credential(
    case: Case, gateway: Gateway, keys: httpx.AsyncClient, mint: Minter, admin: dict[str, str], other: dict[str, str]
) -> dict[str, str]:
    client_id = gateway.settings.admin_client_id
    token = mint(client_id, (*ADMIN_DEFAULT_SCOPES, "authorize_clients"))
    match case.name:
        case "admin JWT":
            return admin
        case "no bearer":
            return {}
        case "garbage bearer":
            return bearer("not-a-token")
        case "JWT without cluster-management":
            return bearer(mint(client_id, [s for s in ADMIN_DEFAULT_SCOPES if s != "cluster-management"]))
        case "function API key":
            return bearer((await create_key(keys, token, key_body(scopes=list(FUNCTION_KEY_DEFAULT_SCOPES))))["value"])
        case "API key with cluster-management":
            return bearer((await create_key(keys, token, key_body(scopes=["cluster-management"])))["value"])
        case "task API key":
            body = key_body(scopes=list(TASK_KEY_DEFAULT_SCOPES), resources=[{"id": "*", "type": "account-tasks"}])
            body["audience_service_ids"] = [TASKS_ISSUER]
            body["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
            headers = {**KEY_HEADERS, "Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER, **bearer(token)}
            response = await keys.post("/v1/keys", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return bearer(response.json()["value"])
        case "admin JWT of another account":
            return other
    raise AssertionError(case.name)


async def _rows(gateway: Gateway) -> list[tuple[Any, ...]]:
    async with gateway.runtime.store.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(schema.clusters).order_by(schema.clusters.c.cluster_id))]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_matrix(
    sis: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    gateway: Gateway,
    mint: Minter,
    admin: dict[str, str],
    other_admin: dict[str, str],
    method: str,
    path: str,
    case: Case,
) -> None:
    own = await register(sis, admin)
    # The other account has a cluster too: its id must not be reachable from here either.
    theirs = await register(sis, other_admin, nca_id="other-account", clusterName="theirs")
    headers = await _credential(case, gateway, keys_client, mint, admin, other_admin)
    before = await _rows(gateway)
    url = path.replace("{ncaId}", DEFAULT_NCA).replace("{clusterId}", own["clusterId"])
    response = await sis.request(method, url, json=_body(method, path), headers=headers)
    if case.status == 0:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return
    problem = assert_sis_problem(response, case.status)
    if case.status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if case.status == 403:
        assert "cluster-management" in problem["detail"]
    assert await _rows(gateway) == before
    if case.name == "admin JWT of another account" and "{clusterId}" in path:
        # ... and the owner cannot reach the other account's cluster through its own account path.
        foreign = path.replace("{ncaId}", DEFAULT_NCA).replace("{clusterId}", theirs["clusterId"])
        assert_sis_problem(await sis.request(method, foreign, json=_body(method, path), headers=admin), 404)
        assert await _rows(gateway) == before
