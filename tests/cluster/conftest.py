"""Several real gateway processes (``python -m gateway serve --redis …``) sharing one Redis and one store.

The processes share the data directory (SQLite store, signing keys, secret), so a token minted
by one is honoured by the others. Routing caches are per process and the cross-process cache
invalidation is not part of this branch: tests create and deploy their function (``minInstances``
0, ACTIVE at once) *before* starting the other processes, which load it at start-up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.control.helpers import deployment_body, function_body
from tests.e2e.driver import Reply, ScriptedWorker
from tests.gateway.helpers import create_key, key_body
from tests.servers import RedisServer, find_free_port


@dataclass
class GatewayProcess:
    data_dir: Path
    redis_url: str
    port: int = field(default_factory=find_free_port)
    worker_port: int = field(default_factory=find_free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.worker_port}"

    def start(self) -> GatewayProcess:
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--port",
            str(self.port),
            "--grpc-port",
            "0",
            "--worker-port",
            str(self.worker_port),
        ]
        cmd += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        if self.redis_url:  # empty: the embedded memory queue (benchmarks compare both)
            cmd += ["--redis", self.redis_url]
        self.log_path = self.data_dir.parent / f"gateway-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CI": ""})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.base + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gateway did not become healthy: {self.log()}")

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye to Redis or the workers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path and self.log_path.exists() else ""

    def client(self, host: str = "invocation.localhost", timeout: float = 60.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers={"Host": host}, timeout=timeout)


@dataclass
class Cluster:
    data_dir: Path
    redis_url: str
    processes: list[GatewayProcess] = field(default_factory=list)
    workers: list[ScriptedWorker] = field(default_factory=list)
    admin_token: str = ""
    invoke_key: str = ""

    def add(self) -> GatewayProcess:
        process = GatewayProcess(self.data_dir, self.redis_url).start()
        self.processes.append(process)
        return process

    async def bootstrap(self, first: GatewayProcess) -> None:
        async with first.client("api-keys.localhost") as keys:
            self.admin_token = (await keys.post("/v1/admin/keys")).json()["value"]
            self.invoke_key = str((await create_key(keys, self.admin_token, key_body()))["value"])

    @property
    def auth_admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.invoke_key}"}

    async def deployed_function(self, via: GatewayProcess) -> tuple[str, str]:
        async with via.client("api.localhost") as api:
            created = await api.post("/v2/nvcf/functions", json=function_body(), headers=self.auth_admin)
            assert created.status_code == 200, created.text
            dto = created.json()["function"]
            url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
            # Each instance may hold as many as the fault tests' workers take at once (up to 50).
            body = deployment_body(minInstances=0, maxRequestConcurrency=64)
            deployed = await api.post(url, json=body, headers=self.auth_admin)
            assert deployed.status_code == 200, deployed.text
        return dto["id"], dto["versionId"]

    async def worker(self, on: GatewayProcess, function_id: str, reply: Reply, concurrency: int = 4) -> ScriptedWorker:
        worker = ScriptedWorker(on.grpc_target, self.admin_token, function_id, reply, concurrency)
        await worker.start()
        self.workers.append(worker)
        return worker


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[Callable[[str], Cluster]]:
    made: list[Cluster] = []

    def make(redis_url: str) -> Cluster:
        cluster = Cluster(tmp_path / "data", redis_url)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for worker in cluster.workers:
            await worker.crash()
        for process in cluster.processes:
            process.stop()


@pytest.fixture
async def cluster(redis_url: str, cluster_factory: Callable[[str], Cluster]) -> Cluster:
    return cluster_factory(redis_url)


def pexec_path(function_id: str) -> str:
    return f"/v2/nvcf/pexec/functions/{function_id}"


async def restart(server: RedisServer) -> None:
    """Start a killed server again, off the main thread: ``tests.servers`` then forks without its
    ``preexec_fn``, whose Python code in the child can crash (SIGSEGV) while gRPC threads run here."""
    await asyncio.to_thread(server.start)
