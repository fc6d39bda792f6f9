"""Real ``python -m gateway serve`` processes for multi-process tests, and the calls they share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.servers import find_free_port

START_TIMEOUT_SECONDS = 60.0


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    port: int
    worker_port: int
    log: Path
    token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    grpc_port: int = 0  # gRPC invocation (the functions' own services)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        """The worker endpoint."""
        return f"127.0.0.1:{self.worker_port}"

    @property
    def invocation_target(self) -> str:
        """gRPC invocation of functions."""
        return f"127.0.0.1:{self.grpc_port}"

    def client(self, host: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Host": host}, timeout=30.0)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
                try:
                    if (await client.get(self.base + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway did not become healthy:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def spawn(
    log: Path, *, data_dir: Path, database: str, redis: str | None, processes: int = 1, **env: str
) -> GatewayProcess:
    port, grpc_port, worker_port = find_free_port(), find_free_port(), find_free_port()
    argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--grpc-port", str(grpc_port)]
    argv += ["--worker-port", str(worker_port)]
    argv += ["--data-dir", str(data_dir), "--database", database, "--processes", str(processes)]
    if redis:
        argv += ["--redis", redis]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    environment.update({"CFGATE_LOG_LEVEL": "warning", **env})
    handle = open(log, "wb")
    proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=environment)
    handle.close()
    return GatewayProcess(proc, port, worker_port, log, grpc_port=grpc_port)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_token(gateway: GatewayProcess) -> str:
    async with gateway.client("api-keys.localhost") as keys:
        response = await keys.post("/v1/admin/keys")
    assert response.status_code == 200, response.text
    token: str = response.json()["value"]
    return token


async def create_function(gateway: GatewayProcess, token: str, **deployment: Any) -> tuple[str, str]:
    """Create and deploy a function through this process; returns (function id, version id)."""
    async with gateway.client("api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(), headers=bearer(token))
        assert created.status_code == 200, created.text
        dto = created.json()["function"]
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        deployed = await api.post(url, json=deployment_body(**deployment), headers=bearer(token))
        assert deployed.status_code == 200, deployed.text
    return dto["id"], dto["versionId"]


async def function_version(gateway: GatewayProcess, token: str, fid: str, vid: str) -> dict[str, Any]:
    async with gateway.client("api.localhost") as api:
        response = await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=bearer(token))
    assert response.status_code == 200, response.text
    dto: dict[str, Any] = response.json()["function"]
    return dto


async def pexec(gateway: GatewayProcess, token: str, fid: str) -> httpx.Response:
    """One pexec with a 1 s poll window: 202 while it waits for a worker, the problem otherwise."""
    async with gateway.client("api.localhost") as api:
        return await api.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={"hello": "world"},
            headers={**bearer(token), "NVCF-POLL-SECONDS": "1"},
        )


async def create_api_key(gateway: GatewayProcess, token: str) -> dict[str, Any]:
    async with gateway.client("api-keys.localhost") as keys:
        response = await keys.post("/v1/keys", json=key_body(), headers={**KEY_HEADERS, **bearer(token)})
    assert response.status_code == 200, response.text
    key: dict[str, Any] = response.json()
    return key


async def delete_api_key(gateway: GatewayProcess, token: str, key_id: str) -> None:
    async with gateway.client("api-keys.localhost") as keys:
        response = await keys.delete(f"/v1/keys/{key_id}", headers={**KEY_HEADERS, **bearer(token)})
    assert response.status_code == 204, response.text


async def pexec_until(gateway: GatewayProcess, token: str, fid: str, status: int) -> httpx.Response:
    """pexec until it answers ``status``: another process's change arrives asynchronously (one
    pub/sub message, then a store read), so "at once" means within that delivery, not before it."""
    deadline = time.monotonic() + 15.0
    while True:
        response = await pexec(gateway, token, fid)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)
