"""Two "hosts": real ``cfgate serve`` processes with DIFFERENT data directories on one PostgreSQL
and one Redis, given the same master key (one by value, one by file). What one host's keys
signed or sealed, the other accepts or opens: admin tokens, a worker's registration, task
secrets; a signing-key rotation on one is seen by the other. Another master key is refused.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import jwt
import orjson

from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES, TASK_KEY_DEFAULT_SCOPES
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.driver import ScriptedWorker
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import GatewayProcess, bearer, create_api_key, create_function, function_version
from tests.multiproc.waiting import eventually
from tests.tasks.conftest import task_body
from tests.tasks.test_worker_stream import ScriptedTaskWorker, hello

FAST = {"CFGATE_WORKER_HEARTBEAT_MS": "300", "CFGATE_TASK_TICK_MS": "100"}


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


async def two_hosts(
    gateways: Spawn, tmp_path: Path, postgres_dsn: str, redis_url: str
) -> tuple[GatewayProcess, GatewayProcess, str]:
    master = new_master_key()
    key_file = tmp_path / "master-key-for-b"
    key_file.write_text(master + "\n")
    a = gateways(data_dir=tmp_path / "host-a", database=postgres_dsn, redis=redis_url, CFGATE_MASTER_KEY=master, **FAST)
    b = gateways(
        data_dir=tmp_path / "host-b",
        database=postgres_dsn,
        redis=redis_url,
        CFGATE_MASTER_KEY_FILE=str(key_file),
        **FAST,
    )
    await asyncio.gather(a.wait_healthy(), b.wait_healthy())
    return a, b, master


async def mint(gateway: GatewayProcess, *scopes: str) -> str:
    async with gateway.client("api-keys.localhost") as keys:
        response = await keys.post("/v1/admin/keys", json={"scopes": list(scopes or ADMIN_DEFAULT_SCOPES)})
    assert response.status_code == 200, response.text
    token: str = response.json()["value"]
    return token


async def list_functions(gateway: GatewayProcess, token: str) -> int:
    async with gateway.client("api.localhost") as api:
        return (await api.get("/v2/nvcf/functions", headers=bearer(token))).status_code


async def jwks_kids(gateway: GatewayProcess) -> set[str]:
    async with gateway.client("api-keys.localhost") as keys:
        return {k["kid"] for k in (await keys.get("/.well-known/jwks.json")).json()["keys"]}


async def test_tokens_workers_and_secrets_cross_hosts(
    gateways: Spawn, tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    a, b, _ = await two_hosts(gateways, tmp_path, postgres_dsn, redis_url)
    # Neither data directory holds signing keys: both hosts read the installation's from the store.
    assert not (tmp_path / "host-a" / "signing-keys.json").exists()
    assert await jwks_kids(a) == await jwks_kids(b)
    token_a, token_b = await mint(a), await mint(b)
    assert (await list_functions(b, token_a), await list_functions(a, token_b)) == (200, 200)

    # A worker attached to B with A's token serves an invocation made at A.
    fid, vid = await create_function(a, token_a, minInstances=1)

    async def echo(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        worker.answer(invocation.request_id, 200, b'{"served_by":"b"}')

    invoker = (await create_api_key(b, token_a))["value"]  # an API key made at B, used at A
    worker = ScriptedWorker(b.grpc_target, token_a, fid, echo)
    await worker.start()
    try:

        async def active_at_a() -> bool:
            return bool((await function_version(a, token_a, fid, vid))["status"] == "ACTIVE")

        await eventually(active_at_a, what="A seeing B's worker")
        async with a.client("api.localhost") as api:
            response = await api.post(
                f"/v2/nvcf/pexec/functions/{fid}", json={"hello": "world"}, headers=bearer(invoker)
            )
        assert response.status_code == 200, response.text
        assert response.json() == {"served_by": "b"}
        assert len(worker.received) == 1
    finally:
        await worker.stop()

    # A task's secret sealed at A reaches a task worker attached to B.
    task_token = await mint(a, *TASK_KEY_DEFAULT_SCOPES)
    task_worker = ScriptedTaskWorker(b.grpc_target, hello(token_a))
    try:
        assert (await task_worker.read()).welcome.session_id
        async with a.client("tasks.localhost") as tasks:
            created = await tasks.post(
                "/v1/nvct/tasks",
                json=task_body(secrets=[{"name": "TOKEN", "value": "sealed-at-a"}]),
                headers=bearer(task_token),
            )
        assert created.status_code == 200, created.text
        (assignment,) = (await task_worker.read()).assignments
        assert assignment.task_id == created.json()["task"]["id"]
        assert orjson.loads(assignment.secrets_json) == {"TOKEN": "sealed-at-a"}
    finally:
        await task_worker.close()
    for gateway in (a, b):
        assert "sealed-at-a" not in gateway.output()


async def test_a_rotation_on_one_host_is_seen_by_the_other(
    gateways: Spawn, tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    a, b, master = await two_hosts(gateways, tmp_path, postgres_dsn, redis_url)
    before = await mint(a)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    rotated = subprocess.run(
        [sys.executable, "-m", "gateway", "rotate-signing-key", "--data-dir", str(tmp_path / "host-a")]
        + ["--database", postgres_dsn],
        env={**environment, "CFGATE_MASTER_KEY": master},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[3].rstrip(";")
    assert new_kid.startswith("cfgate-")

    async def a_signs_with_the_new_key() -> bool:
        return bool(jwt.get_unverified_header(await mint(a))["kid"] == new_kid)

    await eventually(a_signs_with_the_new_key, what="A signing with the rotated key")
    after = await mint(a)
    # B never re-read the keys since: the unknown kid makes it look in the store at once.
    assert await list_functions(b, after) == 200
    assert new_kid in await jwks_kids(b)
    assert await list_functions(b, before) == 200  # the retired key still verifies live tokens


async def test_a_host_with_another_master_key_does_not_start(
    gateways: Spawn, tmp_path: Path, postgres_dsn: str, redis_url: str
) -> None:
    a = gateways(
        data_dir=tmp_path / "host-a", database=postgres_dsn, redis=redis_url, CFGATE_MASTER_KEY=new_master_key()
    )
    await a.wait_healthy()
    # No master key given: host B generates its own in its data directory, which cannot open A's keys.
    b = gateways(data_dir=tmp_path / "host-b", database=postgres_dsn, redis=redis_url)
    assert await asyncio.to_thread(b.proc.wait, 60) != 0
    assert "sealed by another master key" in b.output()
    assert (tmp_path / "host-b" / "master-key").exists()
