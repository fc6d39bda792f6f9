"""A gRPC function behind a real gateway: the container process, its function, its worker, keys."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.servers import find_free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GrpcFunction:
    function_id: str
    version_id: str
    container_port: int
    state: Path


def start_container(state: Path, *, serving: bool = True) -> tuple[subprocess.Popen[bytes], int]:
    port = find_free_port()
    state.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tests.grpc_invocation.container", str(port), str(state)]
    proc = subprocess.Popen(argv if serving else [*argv, "not-serving"], cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"container exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("the gRPC container did not start")


def start_worker(worker_target: str, token: str, function: GrpcFunction, log: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "invoker.worker",
        "--gateway", worker_target,
        "--function-id", function.function_id,
        "--inference-url", f"http://127.0.0.1:{function.container_port}",
        "--max-concurrency", "8",
    ]  # fmt: skip
    env = {**os.environ, "CFGATE_WORKER_TOKEN": token}
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _api(base: str, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Host": host}, timeout=30)


async def admin_token(base: str) -> str:
    async with _api(base, "api-keys.localhost") as keys:
        response = await keys.post("/v1/admin/keys")
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


async def deploy_grpc_function(base: str, token: str, container_port: int, state: Path, **extra: Any) -> GrpcFunction:
    auth = {"Authorization": f"Bearer {token}"}
    health = {"protocol": "GRPC", "uri": "/", "port": container_port, "timeout": "PT10S", "expectedStatusCode": 200}
    body = function_body(name="grpc-echo", inferenceUrl="/grpc", inferencePort=container_port, health=health, **extra)
    async with _api(base, "api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=body, headers=auth)
        assert created.status_code == 200, created.text
        fid, vid = created.json()["function"]["id"], created.json()["function"]["versionId"]
        deployed = await api.post(
            f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", json=deployment_body(), headers=auth
        )
        assert deployed.status_code == 200, deployed.text
    return GrpcFunction(fid, vid, container_port, state)


async def wait_status(base: str, token: str, function: GrpcFunction, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    url = f"/v2/nvcf/functions/{function.function_id}/versions/{function.version_id}"
    async with _api(base, "api.localhost") as api:
        while time.monotonic() < deadline:
            got = await api.get(url, headers={"Authorization": f"Bearer {token}"})
            if got.json()["function"]["status"] == status:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"function did not become {status}")


async def api_key(base: str, token: str, **body: Any) -> str:
    async with _api(base, "api-keys.localhost") as keys:
        response = await keys.post(
            "/v1/keys", json=key_body(**body), headers={"Authorization": f"Bearer {token}", **KEY_HEADERS}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["value"])


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
