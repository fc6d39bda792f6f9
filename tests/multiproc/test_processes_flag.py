"""``cfgate serve --processes N``: children sharing the ports, supervision, refusal without Redis;
and several processes starting at once on an empty PostgreSQL: the schema is migrated once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store.migrations import MIGRATIONS
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import GatewayProcess, admin_token, create_function
from tests.multiproc.waiting import eventually, until_true
from tests.servers import sqlalchemy_url


def children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


async def processes_answering(gateway: GatewayProcess, wanted: int) -> set[str]:
    """Process ids seen on /health over fresh connections, until ``wanted`` distinct ones answered."""
    seen: set[str] = set()
    for _ in range(400):
        async with httpx.AsyncClient(timeout=5.0) as client:  # a new connection each time
            response = await client.get(gateway.base + "/health")
        assert response.status_code == 200
        seen.add(response.json()["process"])
        if len(seen) >= wanted:
            break
    return seen


async def test_two_children_share_the_port_and_are_supervised(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    gateway = gateways(database=postgres_dsn, redis=redis_url, processes=2)
    await gateway.wait_healthy()
    await until_true(lambda: len(children(gateway.proc.pid)) == 2, what="two children")
    first = await processes_answering(gateway, 2)
    assert len(first) == 2
    # Both serve the control plane on the shared store.
    token = await admin_token(gateway)
    await create_function(gateway, token, minInstances=0)
    # A child killed is replaced by a fresh process (a new id), and the port keeps being served.
    victim = min(children(gateway.proc.pid))
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        pids = children(gateway.proc.pid)
        return len(pids) == 2 and victim not in pids

    await eventually(replaced, what="the killed child being replaced")
    await gateway.wait_healthy()

    async def new_process_answers() -> bool:
        return len(await processes_answering(gateway, 3) | first) == 3

    await eventually(new_process_answers, what="the replacement answering")
    pids = children(gateway.proc.pid)
    assert gateway.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text() for pid in pids)
    assert "restarting" in gateway.output()


def test_processes_without_redis_is_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--processes", "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")},
    )
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and b"requires --redis" in result.stderr
    assert not (tmp_path / "cfgate.db").exists()  # refused before anything was created


async def test_grpc_listeners_share_a_port_by_default() -> None:
    """What ``--processes`` relies on: grpc sets SO_REUSEPORT unless told not to."""
    first, second, strict = grpc.aio.server(), grpc.aio.server(), grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    port = first.add_insecure_port("127.0.0.1:0")
    assert second.add_insecure_port(f"127.0.0.1:{port}") == port
    with pytest.raises(RuntimeError):
        strict.add_insecure_port(f"127.0.0.1:{port}")
    for server in (first, second, strict):
        await server.stop(None)


async def test_three_processes_starting_at_once_migrate_once(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    started = [gateways(database=postgres_dsn, redis=redis_url, CFGATE_LOG_LEVEL="info") for _ in range(3)]
    await asyncio.gather(*(g.wait_healthy() for g in started))
    engine = create_async_engine(sqlalchemy_url(postgres_dsn))
    try:
        async with engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version FROM schema_migrations ORDER BY version"))).scalars()
            migrated = list(versions)
            accounts = (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
    finally:
        await engine.dispose()
    assert migrated == [m.version for m in MIGRATIONS]
    assert accounts == 1  # the default account, created once
    logs = [g.output() for g in started]
    # Each migration applied by exactly one of them (one may apply 1 and another the rest).
    applied = [
        v
        for log in logs
        for line in re.findall(r"store: applied migrations \[([\d, ]+)\]", log)
        for v in line.split(", ")
    ]
    assert sorted(applied, key=int) == [str(m.version) for m in MIGRATIONS], logs
    assert not any("Traceback" in log for log in logs)
    # One signing key for all: a token minted by one process is good at the others.
    token = await admin_token(started[0])
    for gateway in started[1:]:
        async with gateway.client("api.localhost") as api:
            response = await api.get("/v2/nvcf/functions", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
