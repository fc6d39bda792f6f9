"""Request shapes used across gateway tests, exactly as the NVCF docs and nvcf-cli send them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

FUNCTIONS_ISSUER = "nvidia-cloud-functions-ncp-service-id-aketm"
TASKS_ISSUER = "nvidia-cloud-tasks-ncp-service-id-nvcttasks"
OWNER = "svc@nvcf-api.local"

KEY_HEADERS = {
    "Key-Issuer-Service": "nvcf-api",
    "Key-Issuer-Id": FUNCTIONS_ISSUER,
    "Key-Owner-Id": OWNER,
}


def expires_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def key_body(
    scopes: list[str] | None = None,
    resources: list[dict[str, str]] | None = None,
    description: str = "invocation key",
    expires: timedelta = timedelta(days=1),
) -> dict[str, Any]:
    """The self-hosted docs' create-key body (snake_case, one nv-cloud-functions policy)."""
    return {
        "description": description,
        "expires_at": expires_in(expires),
        "audience_service_ids": [FUNCTIONS_ISSUER],
        "authorizations": {
            "policies": [
                {
                    "aud": FUNCTIONS_ISSUER,
                    "auds": [FUNCTIONS_ISSUER],
                    "product": "nv-cloud-functions",
                    "resources": resources
                    if resources is not None
                    else [
                        {"id": "*", "type": "account-functions"},
                        {"id": "*", "type": "authorized-functions"},
                    ],
                    "scopes": scopes
                    if scopes is not None
                    else ["invoke_function", "list_functions", "queue_details", "list_functions_details"],
                }
            ]
        },
    }


async def admin_token(client: httpx.AsyncClient, scopes: list[str] | None = None) -> str:
    """An operator token from the bootstrap door: the default admin scopes, or those asked for."""
    body = json.dumps({"scopes": scopes} if scopes is not None else {}).encode()
    response = await client.post("/v1/admin/keys", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    value: str = response.json()["value"]
    return value


async def create_key(
    client: httpx.AsyncClient, token: str | None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    headers = dict(KEY_HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await client.post("/v1/keys", json=body or key_body(), headers=headers)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_problem(response: httpx.Response, status: int, name: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert body["status"] == status
    assert body["type"].startswith("urn:nv-boot:problem-details:")
    if name:
        assert body["type"] == f"urn:nv-boot:problem-details:{name}"
    assert isinstance(body["detail"], str) and body["detail"]
    return body
