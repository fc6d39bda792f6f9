"""Control-plane bodies are JSON: another declared Content-Type is a 415 problem that writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import TASK_KEY_DEFAULT_SCOPES
from tests.conftest import ClientFactory
from tests.control.conftest import OPERATOR_SCOPES
from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import KEY_HEADERS, assert_problem, key_body
from tests.sis.helpers import assert_sis_problem, cluster_body

NCA = "nvcf-default"
FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends without -H


def cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    some, other = uuid.uuid4(), uuid.uuid4()
    return [
        ("api.localhost", "POST", "/v2/nvcf/functions", function_body()),
        ("api.localhost", "PUT", f"/v2/nvcf/deployments/functions/{some}/versions/{other}", deployment_body()),
        ("api.localhost", "PATCH", f"/v2/nvcf/accounts/{NCA}", {"name": "renamed"}),
        ("api-keys.localhost", "POST", "/v1/keys", key_body()),
        ("sis.localhost", "POST", f"/v1/accounts/{NCA}/clusters", cluster_body()),
        ("tasks.localhost", "POST", "/v1/nvct/tasks", {"name": "t", "containerImage": "nvcr.io/x/y:1"}),
    ]


def headers_for(gateway: Gateway, host: str, content_type: str) -> dict[str, str]:
    scopes = TASK_KEY_DEFAULT_SCOPES if host.startswith("tasks.") else OPERATOR_SCOPES
    token = gateway.runtime.issuer.mint(gateway.settings.admin_client_id, tuple(scopes)).value
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if host.startswith("api-keys."):
        headers.update(KEY_HEADERS)
    return headers


@pytest.mark.parametrize("content_type", ["text/plain", FORM, "multipart/form-data; boundary=x"])
@pytest.mark.parametrize(("host", "method", "path", "body"), cases())
async def test_a_body_declared_as_not_json_is_415_and_writes_nothing(
    gateway: Gateway,
    client_factory: ClientFactory,
    host: str,
    method: str,
    path: str,
    body: dict[str, Any],
    content_type: str,
) -> None:
    client = client_factory(host)
    response = await client.request(
        method, path, content=orjson.dumps(body), headers=headers_for(gateway, host, content_type)
    )
    check = assert_sis_problem if host.startswith("sis.") else assert_problem  # SIS adds one member
    problem = check(response, 415, "unsupported-media-type")
    assert content_type.split(";")[0] in problem["detail"]
    assert await gateway.runtime.catalog.functions.all_function_ids() == []
    reader = headers_for(gateway, host, "application/json")
    if host.startswith("tasks."):
        assert (await client.get("/v1/nvct/tasks", headers=reader)).json()["tasks"] == []
    if host.startswith("sis."):
        assert (await client.get(f"/v1/accounts/{NCA}/clusters", headers=reader)).json() == []
    assert (
        await gateway.runtime.api_keys.list_for_owner(KEY_HEADERS["Key-Issuer-Id"], KEY_HEADERS["Key-Owner-Id"]) == []
    )


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
async def test_json_media_types_are_read(gateway: Gateway, client_factory: ClientFactory, content_type: str) -> None:
    api = client_factory("api.localhost")
    response = await api.post(
        "/v2/nvcf/functions",
        content=orjson.dumps(function_body()),
        headers=headers_for(gateway, "api.localhost", content_type),
    )
    assert response.status_code == 200, response.text


async def test_a_body_without_a_declared_type_is_read_as_json(gateway: Gateway, client_factory: ClientFactory) -> None:
    api = client_factory("api.localhost")
    headers = headers_for(gateway, "api.localhost", "")
    del headers["Content-Type"]
    response = await api.post("/v2/nvcf/functions", content=orjson.dumps(function_body()), headers=headers)
    assert response.status_code == 200, response.text
