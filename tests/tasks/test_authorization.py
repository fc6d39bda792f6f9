"""Authorization matrix of ``/v1/nvct``: every endpoint × task key, function key, admin JWT, own vs other account.

Expected (reference §3.1, §3.2, §10): an endpoint accepts its scope as a JWT scope or as
``apikey:<scope>`` of a key's ``nv-cloud-tasks`` policy. So the task key (default task scopes,
``account-tasks`` resource) and a JWT carrying the task scopes may call everything; a functions key
may call nothing, even ``update_secrets`` that its policy holds (its product is not tasks); the
default admin JWT holds only ``update_secrets`` of the task scopes; a task key without the
``account-tasks`` resource grants nothing; another account's caller sees 404 for our task and
an empty list. A refused call writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth.scopes import TASK_KEY_DEFAULT_SCOPES
from gateway.services.tasks.app import task_endpoints
from gateway.store.schema import task_events, task_secrets
from gateway.store.schema import tasks as tasks_table
from tests.gateway.helpers import assert_problem
from tests.tasks.conftest import Headers, bearer, create_task, make_task_key, task_body, task_key_body


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    scope: str
    ok: int
    body: object = None


# One entry per endpoint of task_endpoints(); "{id}" is a fresh task of the default account.
CASES = [
    Case("POST", "/v1/nvct/tasks", "launch_task", 200, task_body()),
    Case("GET", "/v1/nvct/tasks", "list_tasks", 200),
    Case("POST", "/v1/nvct/tasks/bulk", "list_tasks", 200, {"taskIds": ["{id}"]}),
    Case("GET", "/v1/nvct/tasks/{id}", "task_details", 200),
    Case("POST", "/v1/nvct/tasks/{id}/cancel", "cancel_task", 200),
    Case("DELETE", "/v1/nvct/tasks/{id}", "delete_task", 204),
    Case("GET", "/v1/nvct/tasks/{id}/events", "list_events", 200),
    Case("GET", "/v1/nvct/tasks/{id}/results", "list_results", 200),
    Case("PUT", "/v1/nvct/secrets/tasks/{id}", "update_secrets", 204, {"secrets": [{"name": "A", "value": "v"}]}),
]

ADMIN_TASK_SCOPES = {"update_secrets"}  # the default admin token's share of the task scopes


def _fill(value: object, task_id: str) -> object:
    if isinstance(value, str):
        return value.replace("{id}", task_id)
    if isinstance(value, dict):
        return {k: _fill(v, task_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, task_id) for v in value]
    return value


ADMIN = "/v1/nvct/accounts/{ncaId}"


def admin_path(path: str) -> str:
    return ADMIN + path.removeprefix("/v1/nvct")


def test_every_endpoint_is_in_the_matrix() -> None:
    declared = {(e.method, e.path.replace("{taskId}", "{id}"), e.scopes) for e in task_endpoints(None)}  # type: ignore[arg-type]
    own = {(c.method, c.path, (c.scope,)) for c in CASES}
    mirrors = {(c.method, admin_path(c.path), (f"admin:{c.scope}",)) for c in CASES}
    # Admin-only, no own counterpart (tests/control/test_operator_mirrors.py covers it).
    usage = ("GET", "/v1/nvct/accounts/{ncaId}/usage/gpus", ("admin:list_tasks",))
    assert declared == own | mirrors | {usage}


async def _rows(gateway: Gateway) -> tuple[int, ...]:
    counts: list[int] = []
    async with gateway.runtime.store.engine.connect() as conn:
        for table in (tasks_table, task_events, task_secrets):
            counts.append(int((await conn.execute(select(func.count()).select_from(table))).scalar_one()))
    return tuple(counts)


Credential = Callable[[Gateway, httpx.AsyncClient, str], Awaitable[Headers]]


async def _task_key(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    return bearer(await make_task_key(keys, admin))


async def _task_key_without_resource(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    return bearer(await make_task_key(keys, admin, task_key_body(resources=[])))


async def _list_only_task_key(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    return bearer(await make_task_key(keys, admin, task_key_body(scopes=["list_tasks"])))


async def _function_key(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    from tests.gateway.helpers import create_key, key_body

    body = key_body(scopes=["invoke_function", "list_functions", "update_secrets"])
    return bearer(str((await create_key(keys, admin, body))["value"]))


async def _admin_jwt(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    return bearer(admin)


async def _task_jwt(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    return bearer(gateway.runtime.issuer.mint(gateway.settings.admin_client_id, TASK_KEY_DEFAULT_SCOPES).value)


async def _other_account_jwt(gateway: Gateway, keys: httpx.AsyncClient, admin: str) -> Headers:
    await gateway.runtime.accounts.ensure("other-account", "other-account", "other-admin-client")
    return bearer(gateway.runtime.issuer.mint("other-admin-client", TASK_KEY_DEFAULT_SCOPES).value)


# credential → (its task scopes, same account as the task?)
CREDENTIALS: dict[str, tuple[Credential, set[str], bool]] = {
    "task-key": (_task_key, set(TASK_KEY_DEFAULT_SCOPES), True),
    "task-key-without-account-tasks": (_task_key_without_resource, set(), True),
    "task-key-list-only": (_list_only_task_key, {"list_tasks"}, True),
    "function-key": (_function_key, set(), True),
    "admin-jwt": (_admin_jwt, ADMIN_TASK_SCOPES, True),
    "task-jwt": (_task_jwt, set(TASK_KEY_DEFAULT_SCOPES), True),
    "other-account-task-jwt": (_other_account_jwt, set(TASK_KEY_DEFAULT_SCOPES), False),
}


@pytest.mark.parametrize("name", list(CREDENTIALS))
async def test_matrix(
    name: str, gateway: Gateway, tasks: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin_jwt: str
) -> None:
    make, scopes, same_account = CREDENTIALS[name]
    headers = await make(gateway, keys_client, admin_jwt)
    owner = await _task_jwt(gateway, keys_client, admin_jwt)
    for case in CASES:
        task_id = (await create_task(tasks, owner))["id"]
        path = str(_fill(case.path, task_id))
        body = _fill(case.body, task_id)
        before = await _rows(gateway)
        response = await tasks.request(case.method, path, json=body, headers=headers)
        where = f"{case.method} {case.path} x {name}"
        if case.scope not in scopes:
            problem = assert_problem(response, 403, "forbidden")
            assert case.scope in problem["detail"], where
            assert await _rows(gateway) == before, where
        elif not same_account and "{id}" in case.path and case.path != "/v1/nvct/tasks/bulk":
            assert_problem(response, 404, "not-found")
            assert await _rows(gateway) == before, where
        else:
            assert response.status_code == case.ok, f"{where}: {response.text}"
            if case.path == "/v1/nvct/tasks/bulk":
                ids = [t["id"] for t in response.json()["tasks"]]
                assert ids == ([task_id] if same_account else []), where
            if case.path == "/v1/nvct/tasks" and case.method == "GET":
                listed = {t["ncaId"] for t in response.json()["tasks"]}
                expected_nca = gateway.settings.default_nca_id if same_account else "other-account"
                assert listed <= {expected_nca} and (listed or not same_account), where


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic abc", "Bearer nvapi-not-a-real-key", "Bearer x.y.z"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path}")
async def test_missing_or_invalid_bearer_is_401(
    case: Case, authorization: str | None, tasks: httpx.AsyncClient, gateway: Gateway
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    path = str(_fill(case.path, str(uuid.uuid4())))
    response = await tasks.request(case.method, path, json=_fill(case.body, str(uuid.uuid4())), headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert await _rows(gateway) == (0, 0, 0)


async def test_deleted_task_key_is_refused_at_once(
    tasks: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin_jwt: str
) -> None:
    from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER

    headers = {**KEY_HEADERS, "Key-Issuer-Id": TASKS_ISSUER, "Authorization": f"Bearer {admin_jwt}"}
    created = (await keys_client.post("/v1/keys", json=task_key_body(), headers=headers)).json()
    value = created["value"]
    assert (await tasks.get("/v1/nvct/tasks", headers=bearer(value))).status_code == 200
    deleted = await keys_client.delete(f"/v1/keys/{created['id']}", headers=headers)
    assert deleted.status_code == 204
    assert_problem(await tasks.get("/v1/nvct/tasks", headers=bearer(value)), 401)


async def test_task_key_has_no_authority_on_the_control_plane(
    client_factory: object, task_key: Headers, tasks: httpx.AsyncClient
) -> None:
    api = client_factory("api.localhost")  # type: ignore[operator]
    assert_problem(await api.put(f"/v2/nvcf/secrets/telemetries/{uuid.uuid4()}",
                                 json={"secret": {"name": "a", "value": "b"}}, headers=task_key), 403)  # fmt: skip
    assert (await tasks.get("/v1/nvct/tasks", headers=task_key)).status_code == 200


ADMIN_SCOPES = tuple(f"admin:{s}" for s in TASK_KEY_DEFAULT_SCOPES)


@pytest.mark.parametrize("who", ["cross-account-admin", "task-jwt", "task-key"])
async def test_admin_mirrors_need_admin_scopes_and_reach_any_account(
    who: str, gateway: Gateway, tasks: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin_jwt: str
) -> None:
    other = await _other_account_jwt(gateway, keys_client, admin_jwt)
    if who == "cross-account-admin":
        headers = bearer(gateway.runtime.issuer.mint(gateway.settings.admin_client_id, ADMIN_SCOPES).value)
    elif who == "task-jwt":
        headers = await _task_jwt(gateway, keys_client, admin_jwt)
    else:
        headers = await _task_key(gateway, keys_client, admin_jwt)
    for case in CASES:
        task_id = (await create_task(tasks, other))["id"]
        path = str(_fill(admin_path(case.path), task_id)).replace("{ncaId}", "other-account")
        before = await _rows(gateway)
        response = await tasks.request(case.method, path, json=_fill(case.body, task_id), headers=headers)
        where = f"{case.method} {path} x {who}"
        if who != "cross-account-admin":
            problem = assert_problem(response, 403, "forbidden")
            assert f"admin:{case.scope}" in problem["detail"], where
            assert await _rows(gateway) == before, where
            continue
        assert response.status_code == case.ok, f"{where}: {response.text}"
        if case.method == "GET" and case.path == "/v1/nvct/tasks/{id}":
            assert response.json()["task"]["ncaId"] == "other-account"
        if case.method == "POST" and case.path == "/v1/nvct/tasks":
            assert response.json()["task"]["ncaId"] == "other-account"
    if who == "cross-account-admin":
        unknown = await tasks.get("/v1/nvct/accounts/no-such-account/tasks", headers=headers)
        assert assert_problem(unknown, 404)["detail"] == "Unknown account 'no-such-account'"
