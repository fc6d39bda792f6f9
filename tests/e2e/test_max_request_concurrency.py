"""Issue 14 item 7: a deployment's ``maxRequestConcurrency`` bounds each instance, whatever the
worker's own ``--max-concurrency`` says.

Real parts: a ``cfgate serve`` process, the worker agent as its own process (``--max-concurrency
8``) and a real inference server whose ``/slow`` route holds every call until a gate opens. The
deployment says 2: at most 2 calls reach the container at once, the others wait in the queue and
are served as the first ones end; the worker was told the bound at Register and grants 2 credits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.control.helpers import deployment_body, function_body
from tests.e2e.test_worker_input_assets import worker_process
from tests.support.echo_server import EchoServer
from tests.support.serve_process import ServeProcess, client, invoke_key, serve_process, wait_active

CALLS = 5


async def deployed(gateway: ServeProcess, token: str, concurrency: int) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with client(gateway, "api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(inferenceUrl="/slow?gate=hold"), headers=auth)
        assert created.status_code == 200, created.text
        fid, vid = created.json()["function"]["id"], created.json()["function"]["versionId"]
        url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        body = deployment_body(maxRequestConcurrency=concurrency)
        response = await api.post(url, json=body, headers=auth)
        assert response.status_code == 200, response.text
        spec = response.json()["deployment"]["deploymentSpecifications"][0]
        assert spec["maxRequestConcurrency"] == concurrency
    return fid, vid


async def test_at_most_max_request_concurrency_calls_run_at_once(tmp_path: Path) -> None:
    with serve_process(tmp_path) as gateway:
        token = gateway.admin_token()
        fid, vid = await deployed(gateway, token, concurrency=2)
        key = await invoke_key(gateway, token)
        work = tmp_path / "work"
        async with EchoServer() as echo, worker_process(gateway, token, fid, echo, work, "--max-concurrency", "8"):
            await wait_active(gateway, token, fid, vid)
            async with client(gateway, "invocation.localhost") as invocation:
                headers = {"Authorization": f"Bearer {key}", "NVCF-POLL-SECONDS": "60"}
                url = f"/v2/nvcf/pexec/functions/{fid}"
                calls = [asyncio.ensure_future(invocation.post(url, json={}, headers=headers)) for _ in range(CALLS)]
                await echo.wait_for(lambda stats: len(stats.active) >= 2, timeout=30)
                # Long enough for the other calls to reach the container if anything let them.
                most = 0
                for _ in range(30):
                    most = max(most, len(echo.stats.active))
                    await asyncio.sleep(0.05)
                assert most == 2, f"{most} calls ran at once"
                echo.release("hold")
                answers: list[httpx.Response] = await asyncio.gather(*calls)
        log = (tmp_path / "worker.log").read_text()
    assert [a.status_code for a in answers] == [200] * CALLS, [a.text for a in answers]
    assert all(a.json() == {"slept": 1.0} for a in answers)
    # The worker agreed: it granted the deployment's bound, not its own flag.
    assert "2 credits" in log, log
