"""Bodies and checks shared by the SIS tests."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.problems import TYPE_PREFIX

DEFAULT_NCA = "nvcf-default"


def gpu(name: str, *types: str, default: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "instanceTypes": [
            {"name": t, "description": f"{t} node", **({"default": True} if t == default else {})} for t in types
        ],
    }


def cluster_body(nca_id: str = DEFAULT_NCA, **overrides: Any) -> dict[str, Any]:
    """What ``nvcf-cli cluster register`` sends, plus the GPUs the cluster offers."""
    body: dict[str, Any] = {
        "clusterName": "gpu-east-1",
        "clusterGroupName": "east",
        "ncaId": nca_id,
        "cloudProvider": "ON-PREM",
        "region": "us-east-1",
        "nvcaVersion": "2.50.0",
        "clusterDescription": "rack 4",
        "gpus": [gpu("H100", "NCP.GPU.H100_1x", "NCP.GPU.H100_2x", default="NCP.GPU.H100_1x")],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_sis_problem(response: httpx.Response, status: int, name: str | None = None) -> dict[str, Any]:
    """problem+json, plus ICMS's ``error`` member repeating ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail", "instance", "error"}
    assert body["status"] == status
    assert body["type"].startswith(TYPE_PREFIX)
    if name:
        assert body["type"] == TYPE_PREFIX + name
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["error"] == body["detail"]
    return body


async def register(
    sis: httpx.AsyncClient, headers: dict[str, str], prefix: str = "/v1", **overrides: Any
) -> dict[str, Any]:
    nca_id = overrides.pop("nca_id", DEFAULT_NCA)
    response = await sis.post(
        f"{prefix}/accounts/{nca_id}/clusters", json=cluster_body(nca_id, **overrides), headers=headers
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data
