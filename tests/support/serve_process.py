"""``cfgate serve`` as a real child process on free ports, its log kept in a file to read back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.control.helpers import deployment_body, function_body
from tests.e2e.driver import Reply, ScriptedWorker
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.servers import find_free_port


@dataclass
class ServeProcess:
    base: str  # http://127.0.0.1:<port>
    port: int
    grpc_target: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    grpc_invocation: str = ""  # host:port of gRPC invocation (grpc_target is the worker endpoint)

    def log(self, since: int = 0) -> str:
        """The process's output from byte offset ``since`` (see ``log_size``)."""
        with open(self.log_path, "rb") as handle:
            handle.seek(since)
            return handle.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def admin_token(self) -> str:
        response = httpx.post(self.base + "/v1/admin/keys", headers={"Host": "api-keys.localhost"}, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["value"])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@contextmanager
def serve_process(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, umask: int | None = None
) -> Iterator[ServeProcess]:
    port, grpc_port, worker_port = find_free_port(), find_free_port(), find_free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--grpc-port", str(grpc_port)]
    cmd += ["--worker-port", str(worker_port)]
    cmd += ["--data-dir", str(data_dir), *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, umask=-1 if umask is None else umask
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc, log_path)
        worker_target = f"127.0.0.1:{worker_port}"
        base = f"http://127.0.0.1:{port}"
        yield ServeProcess(base, port, worker_target, data_dir, log_path, proc, f"127.0.0.1:{grpc_port}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


# --- driving the served gateway (async; a worker is a ScriptedWorker over real gRPC) ---


def client(gateway: ServeProcess, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.base, headers={"Host": host}, timeout=30)


async def deployed_function(gateway: ServeProcess, token: str) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with client(gateway, "api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(), headers=auth)
        assert created.status_code == 200, created.text
        fid, vid = created.json()["function"]["id"], created.json()["function"]["versionId"]
        deployed = await api.post(
            f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", json=deployment_body(), headers=auth
        )
        assert deployed.status_code == 200, deployed.text
    return fid, vid


async def wait_active(gateway: ServeProcess, token: str, fid: str, vid: str) -> None:
    async with client(gateway, "api.localhost") as api:
        for _ in range(300):
            got = await api.get(
                f"/v2/nvcf/functions/{fid}/versions/{vid}", headers={"Authorization": f"Bearer {token}"}
            )
            if got.json()["function"]["status"] == "ACTIVE":
                return
            await asyncio.sleep(0.05)
    raise AssertionError("function did not become ACTIVE")


async def invoke_key(gateway: ServeProcess, token: str) -> str:
    async with client(gateway, "api-keys.localhost") as keys:
        response = await keys.post(
            "/v1/keys", json=key_body(), headers={"Authorization": f"Bearer {token}", **KEY_HEADERS}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["value"])


def large_result(payload: bytes) -> Reply:
    """A worker reply answering every invocation with ``payload`` as a large result (a 302)."""

    async def large(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        start = pb.ResponseStart(request_id=rid, status=200, kind=pb.LARGE_RESULT)
        chunk = pb.ResponseChunk(request_id=rid, data=payload)
        worker.send(pb.WorkerMessage(credits=1, starts=[start], chunks=[chunk], ends=[pb.ResponseEnd(request_id=rid)]))

    return large
