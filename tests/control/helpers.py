"""Request bodies and calls shared by control-plane tests."""

from __future__ import annotations

from typing import Any

import httpx


def function_body(**overrides: Any) -> dict[str, Any]:
    """A container function as nvcf-cli creates it (it always sends inferencePort)."""
    body: dict[str, Any] = {
        "name": "echo",
        "inferenceUrl": "/echo",
        "inferencePort": 8000,
        "containerImage": "nvcr.io/example/echo:1.0",
        "health": {"protocol": "HTTP", "uri": "/health", "port": 8000, "timeout": "PT10S", "expectedStatusCode": 200},
    }
    body.update(overrides)
    return body


async def create_function(api: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """Create a function; returns its FunctionDto (``id``, ``versionId`` …)."""
    response = await api.post("/v2/nvcf/functions", json=function_body(**overrides), headers=headers)
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["function"]
    return dto


def deployment_body(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "gpu": "H100",
        "instanceType": "NCP.GPU.H100_1x",
        "minInstances": 1,
        "maxInstances": 1,
        "maxRequestConcurrency": 10,
    }
    spec.update(overrides)
    return {"deploymentSpecifications": [spec]}
