"""The worker agent's own ``/metrics`` (``cfgate worker --metrics-port``), scraped while a real
agent process serves real invocations from a real ``cfgate serve`` to a real HTTP container."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from tests.metrics.scraping import names, scrape, value
from tests.servers import find_free_port
from tests.support.echo_server import EchoServer
from tests.support.serve_process import deployed_function, invoke_key, serve_process, wait_active

ROOT = Path(__file__).resolve().parents[2]


async def test_the_worker_agent_counts_its_invocations_and_the_containers_answers(tmp_path: Path) -> None:
    metrics_port = find_free_port()
    with serve_process(tmp_path) as gateway:
        token = gateway.admin_token()
        fid, vid = await deployed_function(gateway, token)
        key = await invoke_key(gateway, token)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
        env["CFGATE_WORKER_TOKEN"] = token
        async with EchoServer() as echo:
            agent = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "invoker.worker",
                "--gateway", gateway.grpc_target,
                "--function-id", fid,
                "--inference-url", echo.url,
                "--max-concurrency", "2",
                "--work-dir", str(tmp_path / "work"),
                "--metrics-port", str(metrics_port),
                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await wait_active(gateway, token, fid, vid)
                before = await scrape(metrics_port)
                assert value(before, "cfgate_worker_sessions_total") == 1
                async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as client:
                    auth = {"Authorization": f"Bearer {key}"}
                    for _ in range(2):
                        ok = await client.post(
                            f"/v2/nvcf/pexec/functions/{fid}", json={"a": 1},
                            headers={**auth, "Host": "invocation.localhost"},
                        )  # fmt: skip
                        assert ok.status_code == 200, ok.text
                    failing = await client.post(
                        "/error?status=503", json={}, headers={**auth, "Host": f"{fid}.invocation.localhost"}
                    )
                    assert failing.status_code == 503, failing.text
                after = await scrape(metrics_port)
            finally:
                agent.terminate()
                await agent.wait()
    assert {
        "cfgate_worker_invocations_total",
        "cfgate_worker_container_responses_total",
        "cfgate_worker_container_seconds_bucket",
        "cfgate_worker_container_seconds_count",
        "cfgate_worker_errors_total",
        "cfgate_worker_in_flight",
        "cfgate_worker_sessions_total",
    } <= names(after)
    assert value(before, "cfgate_worker_invocations_total", outcome="answered") == 0
    assert value(after, "cfgate_worker_invocations_total", outcome="answered") == 3
    assert value(after, "cfgate_worker_invocations_total", outcome="failed") == 0
    assert value(after, "cfgate_worker_container_responses_total", status="2xx") == 2
    assert value(after, "cfgate_worker_container_responses_total", status="5xx") == 1
    assert value(after, "cfgate_worker_container_seconds_count") == 3
    assert value(after, "cfgate_worker_errors_total", kind="container_unreachable") == 0
    assert value(after, "cfgate_worker_in_flight") == 0
