"""The whole invocation path with real parts: the gateway on loopback sockets, the worker agent as
its own process (``python -m invoker.worker``), and a real HTTP inference server.

The fault test kills a worker process with SIGKILL while it holds invocations: the gateway sees the
stream break and puts them back at the head of the queue, the other worker answers them, and every
client gets exactly one answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson

from tests.e2e.conftest import LiveGateway
from tests.e2e.test_invoke_scripted import wait_active
from tests.support.echo_server import EchoServer

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0

WorkerProcess = asyncio.subprocess.Process


@asynccontextmanager
async def worker_process(
    live: LiveGateway, function_id: str, echo: EchoServer, work_dir: Path, concurrency: int, instance_id: str = "worker"
) -> AsyncIterator[WorkerProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "invoker.worker",
        "--gateway", live.grpc_target,
        "--token", live.admin_token,
        "--function-id", function_id,
        "--inference-url", echo.url,
        "--health-url", f"{echo.url}/health",
        "--max-concurrency", str(concurrency),
        "--work-dir", str(work_dir),
        "--instance-id", instance_id,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


async def test_pexec_through_the_real_agent_reaches_the_container_with_nvcf_headers(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    fid, vid = await live_gateway.create_deployed_function(inferenceUrl="/echo?json=1")
    key = await live_gateway.api_key()
    async with EchoServer() as echo, worker_process(live_gateway, fid, echo, tmp_path / "w", 4):
        await wait_active_slowly(live_gateway, fid, vid)
        async with live_gateway.client("invocation.localhost") as client:
            response = await client.post(
                f"/v2/nvcf/pexec/functions/{fid}",
                content=b'{"prompt":"hi"}',
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
    assert response.status_code == 200, response.text
    assert response.headers["nvcf-status"] == "fulfilled"
    seen = orjson.loads(response.content)
    assert seen["path"] == "/echo" and seen["body"] == '{"prompt":"hi"}'
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert "authorization" not in headers
    assert headers["nvcf-reqid"] == response.headers["nvcf-reqid"]
    assert headers["nvcf-function-id"] == fid
    assert headers["nvcf-function-version-id"] == vid
    assert headers["nvcf-ncaid"] == "nvcf-default"
    assert headers["nvcf-function-name"] == "echo"


async def wait_active_slowly(live: LiveGateway, function_id: str, version_id: str) -> None:
    """A worker process needs an interpreter start before it registers."""
    for _ in range(10):
        try:
            await wait_active(live, function_id, version_id)
            return
        except AssertionError:
            continue
    raise AssertionError("the worker process did not attach")


async def test_kill_9_of_a_worker_with_invocations_in_flight_loses_none(
    live_gateway: LiveGateway, tmp_path: Path
) -> None:
    total = 50
    fid, vid = await live_gateway.create_deployed_function(max_request_concurrency=total)
    key = await live_gateway.api_key()
    async with (
        EchoServer() as echo,
        worker_process(live_gateway, fid, echo, tmp_path / "a", total, "doomed") as doomed,
        worker_process(live_gateway, fid, echo, tmp_path / "b", total, "healthy"),
    ):
        invocations = live_gateway.gateway.invocations.dispatcher
        await eventually(
            lambda: [s.credits for s in invocations.sessions(vid)] == [total, total], "both workers attached and ready"
        )
        await wait_active(live_gateway, fid, vid)
        limits = httpx.Limits(max_connections=total + 4)
        async with httpx.AsyncClient(
            base_url=live_gateway.base, timeout=WAIT * 2, limits=limits, headers={"Host": f"{fid}.invocation.localhost"}
        ) as client:
            calls = [
                asyncio.create_task(
                    client.post(
                        f"/slow?seconds=120&gate=held&tag={i}",
                        json={"i": i},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                )
                for i in range(total)
            ]
            await echo.wait_for(lambda stats: len(stats.active) == total, timeout=WAIT)
            held = {s.instance_id: len(s.inflight) for s in invocations.sessions(vid)}
            assert sum(held.values()) == total and all(held.values()), held  # both workers hold some
            lost = held["doomed"]
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            await eventually(lambda: len(invocations.sessions(vid)) == 1, "the killed worker's session ended")
            # The killed worker's invocations reach the container again (same request ids) via the survivor.
            await echo.wait_for(lambda stats: len(set(stats.disconnects) & set(stats.active)) == lost, WAIT)
            await echo.wait_for(lambda stats: len(stats.active) == total, WAIT)
            echo.release("held")
            responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * total, [r.text for r in responses if r.status_code != 200]
    assert all(orjson.loads(r.content) == {"slept": 120.0} for r in responses)
    request_ids = [r.headers["nvcf-reqid"] for r in responses]
    assert len(set(request_ids)) == total  # one answer per invocation, none shared or repeated
    assert all(r.headers["nvcf-status"] == "fulfilled" for r in responses)
