"""Function secrets reach the container (issue 14 item 8), with every part real: two gateway
processes with different data dirs on one PostgreSQL and Redis, the worker agent as its own
process (``python -m invoker.worker --secrets-file``) attached to host B, and an inference
container process that reads the secrets file at each request.

Secrets are set at host A (at creation, then with ``PUT /v2/nvcf/secrets/...``); the container
behind B sees each version of them, in a 0600 file, and no log of either gateway or the worker
holds a value.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.control.helpers import deployment_body, function_body
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import GatewayProcess, bearer, create_api_key, function_version
from tests.multiproc.test_two_hosts import mint, two_hosts
from tests.multiproc.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND, THIRD = "first-value-4f1c", "second-value-9a2e", "third-value-77d0"


@asynccontextmanager
async def process(*argv: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    with open(log, "wb") as handle:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=env, stdout=handle, stderr=asyncio.subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def container_url(log: Path) -> str:
    async def started() -> bool:
        return log.exists() and "listening on" in log.read_text()

    await eventually(started, what="the container listening")
    return log.read_text().split("listening on ", 1)[1].split()[0]


async def create_with_secrets(gateway: GatewayProcess, token: str) -> tuple[str, str]:
    body = function_body(inferenceUrl="/secrets", secrets=[{"name": "API_TOKEN", "value": FIRST}])
    async with gateway.client("api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=body, headers=bearer(token))
        assert created.status_code == 200, created.text
        dto = created.json()["function"]
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        deployed = await api.post(url, json=deployment_body(), headers=bearer(token))
        assert deployed.status_code == 200, deployed.text
    return dto["id"], dto["versionId"]


async def put_secrets(gateway: GatewayProcess, token: str, fid: str, vid: str, secrets: list[dict[str, Any]]) -> None:
    async with gateway.client("api.localhost") as api:
        response = await api.put(
            f"/v2/nvcf/secrets/functions/{fid}/versions/{vid}", json={"secrets": secrets}, headers=bearer(token)
        )
    assert response.status_code == 204, response.text


async def seen_by_container(gateway: GatewayProcess, key: str, fid: str) -> dict[str, Any]:
    async with gateway.client("api.localhost") as api:
        response = await api.post(f"/v2/nvcf/pexec/functions/{fid}", json={}, headers=bearer(key))
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_secrets_reach_the_container_and_follow_updates_across_hosts(
    gateways: Spawn, tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    a, b, _ = await two_hosts(gateways, tmp_path, postgres_dsn, redis_url)
    token = await mint(a)
    fid, vid = await create_with_secrets(a, token)
    key = (await create_api_key(a, token))["value"]
    secrets_file = tmp_path / "container" / "var-secrets" / "secrets.json"
    container_log, worker_log = tmp_path / "container.log", tmp_path / "worker.log"
    container_args = ("--port", "0", "--secrets-file", str(secrets_file), "--no-uvloop")
    async with process("-m", "tests.support.echo_server", *container_args, log=container_log):
        url = await container_url(container_log)
        worker_args = [
            "--gateway", b.grpc_target, "--token", token, "--function-id", fid, "--inference-url", url,
            "--health-url", f"{url}/health", "--work-dir", str(tmp_path / "work"),
            "--secrets-file", str(secrets_file), "--log-level", "DEBUG",
        ]  # fmt: skip
        async with process("-m", "invoker.worker", *worker_args, log=worker_log) as worker:

            async def file_written() -> bool:
                assert worker.returncode is None, worker_log.read_text()
                return secrets_file.exists()

            await eventually(file_written, timeout=30, what="the worker writing the secrets file")
            assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600

            async def active_at_a() -> bool:
                return bool((await function_version(a, token, fid, vid))["status"] == "ACTIVE")

            await eventually(active_at_a, what="A seeing B's worker")
            first = await seen_by_container(a, key, fid)
            assert first == {"secrets": {"API_TOKEN": FIRST}, "mode": "0o600"}

            # Updated at A (another host than the worker's): pushed to B's worker, file rewritten.
            await put_secrets(a, token, fid, vid, [{"name": "API_TOKEN", "value": SECOND}])

            async def updated(expected: dict[str, str]) -> bool:
                return bool((await seen_by_container(a, key, fid))["secrets"] == expected)

            await eventually(lambda: updated({"API_TOKEN": SECOND}), what="the new value in the container")
            # Merged, as NVCF merges: a new name joins the existing one.
            await put_secrets(b, token, fid, vid, [{"name": "DB_PASSWORD", "value": THIRD}])
            await eventually(lambda: updated({"API_TOKEN": SECOND, "DB_PASSWORD": THIRD}), what="the merged secrets")
            assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
            # Nothing but the file is left in its directory (atomic replace, no temporaries).
            assert sorted(p.name for p in secrets_file.parent.iterdir()) == ["secrets.json"]
    logs = {"A": a.output(), "B": b.output(), "worker": worker_log.read_text()}
    for name, text in logs.items():
        for value in (FIRST, SECOND, THIRD):
            assert value not in text, f"{name}'s log holds a secret value"
    assert "secrets file" in logs["worker"]  # the worker did log its updates (by path only)
