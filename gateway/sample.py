"""A sample function set up through the real API: admin token, function, deployment, invoke key.

Shared by ``cfgate demo`` and the load tests in ``bench/`` so that both exercise exactly the calls a
user makes (no store shortcuts). ``http`` is a client whose base URL is the gateway.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

FUNCTIONS_ISSUER = "nvidia-cloud-functions-ncp-service-id-aketm"
# The sample LLM function (``gateway.llm.container``): every OpenAI path of its one model.
LLM_MODEL = "cfgate-sample"
LLM_FIELDS: Mapping[str, object] = {
    "functionType": "LLM",
    "models": [{"name": LLM_MODEL, "llmConfig": {"uris": ["/v1"]}}],
}


class SampleError(RuntimeError):
    """The gateway did not answer a set-up call as expected."""


@dataclass(frozen=True, slots=True)
class SampleFunction:
    function_id: str
    version_id: str
    admin_token: str


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code != 200:
        raise SampleError(f"{what}: {response.status_code} {response.text[:300]}")
    return response


async def admin_token(http: httpx.AsyncClient) -> str:
    """Mint an admin token through the bootstrap door (open to loopback callers)."""
    answer = _check(await http.post("/v1/admin/keys", headers={"Host": "api-keys.localhost"}), "admin token")
    return str(answer.json()["value"])


async def create_function(
    http: httpx.AsyncClient,
    token: str,
    container_port: int,
    *,
    name: str = "echo",
    inference_url: str = "/echo",
    max_concurrency: int = 8,
    extra_fields: Mapping[str, object] | None = None,
) -> SampleFunction:
    """Create a function served by a container on ``container_port`` and deploy it (one instance);
    ``extra_fields`` go into the create body (an LLM function's ``functionType`` and ``models``)."""
    admin = {"Host": "api.localhost", "Authorization": f"Bearer {token}"}
    function: dict[str, object] = {
        "name": name,
        "inferenceUrl": inference_url,
        "inferencePort": container_port,
        "containerImage": f"cfgate/{name}:latest",
        "health": {
            "protocol": "HTTP",
            "uri": "/health",
            "port": container_port,
            "timeout": "PT10S",
            "expectedStatusCode": 200,
        },
    }
    function.update(extra_fields or {})
    created = _check(await http.post("/v2/nvcf/functions", json=function, headers=admin), "create function")
    dto = created.json()["function"]
    fid, vid = dto["id"], dto["versionId"]
    spec = {
        "gpu": "CPU",
        "instanceType": "cfgate.local",
        "minInstances": 1,
        "maxInstances": 1,
        "maxRequestConcurrency": max_concurrency,
    }
    url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
    _check(await http.post(url, json={"deploymentSpecifications": [spec]}, headers=admin), "deploy function")
    return SampleFunction(fid, vid, token)


def worker_command(
    grpc_target: str, function: SampleFunction, container_port: int, max_concurrency: int = 8
) -> list[str]:
    """The ``cfgate worker`` command line that attaches a worker agent beside the container. The
    token is not on it (command lines are visible to every local user): run it with ``worker_env``."""
    return [
        sys.executable, "-m", "invoker.worker",
        "--gateway", grpc_target,
        "--function-id", function.function_id,
        "--inference-url", f"http://127.0.0.1:{container_port}",
        "--health-url", f"http://127.0.0.1:{container_port}/health",
        "--max-concurrency", str(max_concurrency),
    ]  # fmt: skip


def worker_env(function: SampleFunction, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ``worker_command``: ``base`` (default: this process's) plus the token."""
    return {**(os.environ if base is None else base), "CFGATE_WORKER_TOKEN": function.admin_token}


async def wait_active(http: httpx.AsyncClient, function: SampleFunction, timeout: float = 60.0) -> None:
    """Wait until a worker attached and the version is ACTIVE."""
    admin = {"Host": "api.localhost", "Authorization": f"Bearer {function.admin_token}"}
    url = f"/v2/nvcf/functions/{function.function_id}/versions/{function.version_id}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = _check(await http.get(url, headers=admin), "function status").json()
        if got["function"]["status"] == "ACTIVE":
            return
        await asyncio.sleep(0.1)
    raise SampleError(f"no worker attached within {timeout:.0f} s")


async def invoke_key(http: httpx.AsyncClient, token: str, owner: str = "demo@cfgate.local") -> str:
    """An ``nvapi-`` key allowed to invoke the account's functions (one day)."""
    expires = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = {
        "product": "nv-cloud-functions",
        "scopes": ["invoke_function", "list_functions", "queue_details"],
        "resources": [{"id": "*", "type": "account-functions"}],
    }
    headers = {
        "Host": "api-keys.localhost",
        "Authorization": f"Bearer {token}",
        "Key-Issuer-Id": FUNCTIONS_ISSUER,
        "Key-Owner-Id": owner,
    }
    body = {"description": "cfgate sample", "expires_at": expires, "authorizations": {"policies": [policy]}}
    return str(_check(await http.post("/v1/keys", json=body, headers=headers), "API key").json()["value"])
