"""Fixtures for NVCT tests: a tasks-host client and the credentials of the authorization matrix."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import TASK_KEY_DEFAULT_SCOPES
from tests.conftest import ClientFactory
from tests.control.conftest import OTHER_CLIENT_ID, OTHER_NCA_ID
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, admin_token, create_key, expires_in, key_body

Headers = dict[str, str]


def task_key_body(
    scopes: Sequence[str] = TASK_KEY_DEFAULT_SCOPES, resources: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """What ``nvcf-cli api-key generate --for task`` sends (one nv-cloud-tasks policy)."""
    return {
        "description": "task key",
        "expires_at": expires_in(timedelta(days=1)),
        "audience_service_ids": [TASKS_ISSUER],
        "authorizations": {
            "policies": [
                {
                    "aud": TASKS_ISSUER,
                    "auds": [TASKS_ISSUER],
                    "product": "nv-cloud-tasks",
                    "resources": resources if resources is not None else [{"id": "*", "type": "account-tasks"}],
                    "scopes": list(scopes),
                }
            ]
        },
    }


async def make_task_key(keys: httpx.AsyncClient, token: str, body: dict[str, Any] | None = None) -> str:
    headers = {**KEY_HEADERS, "Key-Issuer-Id": TASKS_ISSUER, "Key-Issuer-Service": "nvct-api"}
    headers["Authorization"] = f"Bearer {token}"
    response = await keys.post("/v1/keys", json=body or task_key_body(), headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tasks(client_factory: ClientFactory) -> httpx.AsyncClient:
    return client_factory("tasks.localhost")


@pytest.fixture
async def admin_jwt(keys_client: httpx.AsyncClient) -> str:
    """The default admin token (POST /v1/admin/keys): it carries no task scope."""
    return await admin_token(keys_client)


@pytest.fixture
async def task_key(keys_client: httpx.AsyncClient, admin_jwt: str) -> Headers:
    return bearer(await make_task_key(keys_client, admin_jwt))


@pytest.fixture
async def function_key(keys_client: httpx.AsyncClient, admin_jwt: str) -> Headers:
    """A functions key of the same account, holding every scope a task key holds too."""
    body = key_body(scopes=["invoke_function", "list_functions", "update_secrets"])
    return bearer(str((await create_key(keys_client, admin_jwt, body))["value"]))


@pytest.fixture
def task_jwt(gateway: Gateway) -> Headers:
    """A JWT of the default account with the task scopes (plain authorities)."""
    return bearer(gateway.runtime.issuer.mint(gateway.settings.admin_client_id, TASK_KEY_DEFAULT_SCOPES).value)


@pytest.fixture
async def other_task_jwt(gateway: Gateway) -> Headers:
    """The same scopes in a second account."""
    await gateway.runtime.accounts.ensure(OTHER_NCA_ID, OTHER_NCA_ID, OTHER_CLIENT_ID)
    return bearer(gateway.runtime.issuer.mint(OTHER_CLIENT_ID, TASK_KEY_DEFAULT_SCOPES).value)


def task_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "fine-tune-1",
        "gpuSpecification": {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x"},
        "containerImage": "nvcr.io/example/trainer:1.0",
        "containerArgs": "python train.py --epochs 1",
        "resultHandlingStrategy": "NONE",
    }
    body.update(overrides)
    return body


async def create_task(client: httpx.AsyncClient, headers: Headers, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/nvct/tasks", json=task_body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["task"]
    return dto
