"""Key minting matrix: creator credential × requested scopes → 200 or 401/403, from the authority table.

Keys never exceed their creator (issue 12 item 3): ``POST /v1/keys`` succeeds only when every
requested scope is ``gateway.auth.authority.delegable`` by the creator's row of the table; a
refusal is a 403 problem and stores nothing. The expectations are computed from the table
(``expected``); ``test_documented_flows_hold_in_the_table`` pins the documented flows so the table
itself cannot drift from them. One gateway per backend serves the module (SQLite and PostgreSQL).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth.authority import CredentialKind, Reach, Surface, delegable, rule, undelegable
from gateway.auth.scopes import (
    ADMIN_DEFAULT_SCOPES,
    ALL_SCOPES,
    FUNCTION_KEY_DEFAULT_SCOPES,
    TASK_KEY_DEFAULT_SCOPES,
    TASKS_PRODUCT,
)
from gateway.store import schema
from tests.conftest import LOOPBACK_CLIENT, make_settings
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, assert_problem, key_body

REMOTE_CLIENT = ("203.0.113.9", 40000)
OPERATOR_WITH_SETUP = (*ADMIN_DEFAULT_SCOPES, "account_setup")


@dataclass
class Site:
    gateway: Gateway
    loopback: httpx.AsyncClient
    remote: httpx.AsyncClient


@dataclass(frozen=True)
class Creator:
    name: str
    kind: CredentialKind
    held: tuple[str, ...]
    # The Authorization headers (and which client sends them), made on the site.
    headers: Callable[[Site], Awaitable[dict[str, str]]]
    remote: bool = False


@dataclass(frozen=True)
class Request:
    name: str
    scopes: tuple[str, ...]
    product: str = "nv-cloud-functions"


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def _nothing(site: Site) -> dict[str, str]:
    return {}


def _door_token(scopes: tuple[str, ...] | None) -> Callable[[Site], Awaitable[dict[str, str]]]:
    """An operator token from ``POST /v1/admin/keys`` at the door (default scopes, or those asked for)."""

    async def make(site: Site) -> dict[str, str]:
        body: dict[str, Any] = {} if scopes is None else {"scopes": list(scopes)}
        response = await site.loopback.post("/v1/admin/keys", json=body)
        assert response.status_code == 200, response.text
        return _bearer(response.json()["value"])

    return make


def _account_admin(scopes: tuple[str, ...]) -> Callable[[Site], Awaitable[dict[str, str]]]:
    """A JWT of another account's admin client (not the operator)."""

    async def make(site: Site) -> dict[str, str]:
        nca_id = f"minting-{uuid.uuid4().hex[:8]}"
        await site.gateway.runtime.accounts.ensure(nca_id, nca_id, f"{nca_id}-client")
        return _bearer(site.gateway.runtime.issuer.mint(f"{nca_id}-client", scopes).value)

    return make


async def _api_key(site: Site) -> dict[str, str]:
    """A functions API key holding every scope (made at the door, which may delegate them all)."""
    headers = {**KEY_HEADERS}
    response = await site.loopback.post("/v1/keys", json=key_body(scopes=list(ALL_SCOPES)), headers=headers)
    assert response.status_code == 200, response.text
    return _bearer(response.json()["value"])


CREATORS: tuple[Creator, ...] = (
    Creator("bootstrap door", CredentialKind.DOOR, (), _nothing),
    Creator("no bearer, remote", CredentialKind.NONE, (), _nothing, remote=True),
    Creator("operator token", CredentialKind.OPERATOR, ADMIN_DEFAULT_SCOPES, _door_token(None)),
    Creator(
        "operator token + account_setup", CredentialKind.OPERATOR, OPERATOR_WITH_SETUP, _door_token(OPERATOR_WITH_SETUP)
    ),
    Creator("account admin", CredentialKind.ACCOUNT_ADMIN, ADMIN_DEFAULT_SCOPES, _account_admin(ADMIN_DEFAULT_SCOPES)),
    Creator(
        "list_functions JWT", CredentialKind.ACCOUNT_ADMIN, ("list_functions",), _account_admin(("list_functions",))
    ),
    Creator("functions API key", CredentialKind.FUNCTION_KEY, ALL_SCOPES, _api_key),
)

REQUESTS: tuple[Request, ...] = (
    Request("function key", FUNCTION_KEY_DEFAULT_SCOPES),
    Request("task key", TASK_KEY_DEFAULT_SCOPES, TASKS_PRODUCT),
    *(Request(scope, (scope,)) for scope in ALL_SCOPES),
)


def expected(creator: Creator, request: Request) -> int:
    if creator.kind is CredentialKind.NONE:
        return 401
    if rule(creator.kind, Surface.KEYS).reach is Reach.NOTHING:
        return 403
    return 403 if undelegable(creator.kind, creator.held, request.scopes) else 200


def test_documented_flows_hold_in_the_table() -> None:
    """README / reference §3.1: the default admin token mints the function and the task key, not
    an ``account_setup`` key; a token holding only ``list_functions`` delegates nothing more."""
    operator = delegable(CredentialKind.OPERATOR, ADMIN_DEFAULT_SCOPES)
    assert set(FUNCTION_KEY_DEFAULT_SCOPES) <= operator
    assert set(TASK_KEY_DEFAULT_SCOPES) <= operator
    assert "account_setup" not in operator
    assert delegable(CredentialKind.ACCOUNT_ADMIN, ("list_functions",)) == {"list_functions"}
    assert delegable(CredentialKind.DOOR, ()) == set(ALL_SCOPES)
    assert delegable(CredentialKind.FUNCTION_KEY, ALL_SCOPES) == set()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def minting_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('minting') / 'cfgate.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"minting_{uuid.uuid4().hex[:12]}"
    dsn: str = server.create_database(name)
    try:
        yield dsn
    finally:
        if server.is_running():
            server.drop_database(name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(minting_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp: Path = tmp_path_factory.mktemp("minting-data")
    gateway = Gateway(make_settings(tmp, database=minting_database))
    await gateway.startup()
    base = "http://api-keys.localhost"
    loopback = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=LOOPBACK_CLIENT), base_url=base)
    remote = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway, client=REMOTE_CLIENT), base_url=base)
    try:
        yield Site(gateway, loopback, remote)
    finally:
        await loopback.aclose()
        await remote.aclose()
        await gateway.shutdown()


def _body(request: Request) -> dict[str, Any]:
    if request.product != TASKS_PRODUCT:
        return key_body(scopes=list(request.scopes))
    body = key_body(scopes=list(request.scopes), resources=[{"id": "*", "type": "account-tasks"}])
    body["audience_service_ids"] = [TASKS_ISSUER]
    body["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
    return body


def _issuer_headers(request: Request) -> dict[str, str]:
    if request.product != TASKS_PRODUCT:
        return dict(KEY_HEADERS)
    return {**KEY_HEADERS, "Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER}


async def _key_count(site: Site) -> int:
    async with site.gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(schema.api_keys))).scalar_one())


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("creator", "request_"),
    [pytest.param(c, r, id=f"{c.name} x {r.name}") for c in CREATORS for r in REQUESTS],
)
async def test_minting(site: Site, creator: Creator, request_: Request) -> None:
    want = expected(creator, request_)
    headers = {**_issuer_headers(request_), **await creator.headers(site)}
    client = site.remote if creator.remote else site.loopback
    before = await _key_count(site)
    response = await client.post("/v1/keys", json=_body(request_), headers=headers)
    if want == 200:
        assert response.status_code == 200, response.text
        policy = response.json()["authorizations"]["policies"][0]
        assert (policy["product"], policy["scopes"]) == (request_.product, list(request_.scopes))
        assert await _key_count(site) == before + 1
        return
    problem = assert_problem(response, want, {401: "unauthorized", 403: "forbidden"}[want])
    if want == 403 and rule(creator.kind, Surface.KEYS).reach is not Reach.NOTHING:
        refused = undelegable(creator.kind, creator.held, request_.scopes)
        assert all(f"'{scope}'" in problem["detail"] for scope in refused), problem["detail"]
    assert await _key_count(site) == before, "a refused key was stored"


@pytest.mark.asyncio(loop_scope="module")
async def test_authorizations_cannot_widen_a_key_past_its_editor(site: Site) -> None:
    """``PUT /v1/keys/{id}/authorizations`` is held to the same rule as creation."""
    headers = {**KEY_HEADERS, **await _account_admin(("list_functions",))(site)}
    created = await site.loopback.post("/v1/keys", json=key_body(scopes=["list_functions"]), headers=headers)
    assert created.status_code == 200, created.text
    key = created.json()
    wider = key_body(scopes=["list_functions", "delete_function"])["authorizations"]
    response = await site.loopback.put(f"/v1/keys/{key['id']}/authorizations", json=wider, headers=headers)
    assert "'delete_function'" in assert_problem(response, 403, "forbidden")["detail"]
    stored = await site.gateway.runtime.api_keys.get(key["id"])
    assert stored is not None
    assert stored.authorizations["policies"][0]["scopes"] == ["list_functions"]
    same = key_body(scopes=["list_functions"])["authorizations"]
    response = await site.loopback.put(f"/v1/keys/{key['id']}/authorizations", json=same, headers=headers)
    assert response.status_code == 200, response.text
