"""A full queue is a 429 problem with an integer ``Retry-After``, as every 429 of the gateway
(issue 14 item 6), against a real ``cfgate serve`` process with a queue bound of 1."""

from __future__ import annotations

import os
from pathlib import Path

from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import assert_problem
from tests.support.serve_process import ServeProcess, client, invoke_key, serve_process


async def scaled_to_zero(gateway: ServeProcess, token: str) -> str:
    """A function deployed with minInstances 0: ACTIVE at once, with no worker to take anything."""
    auth = {"Authorization": f"Bearer {token}"}
    async with client(gateway, "api.localhost") as api:
        created = (await api.post("/v2/nvcf/functions", json=function_body(), headers=auth)).json()["function"]
        url = f"/v2/nvcf/deployments/functions/{created['id']}/versions/{created['versionId']}"
        deployed = await api.post(url, json=deployment_body(minInstances=0), headers=auth)
        assert deployed.status_code == 200, deployed.text
    return str(created["id"])


async def test_a_full_queue_is_429_with_retry_after(tmp_path: Path) -> None:
    env = {**os.environ, "CFGATE_MAX_QUEUE_DEPTH": "1"}
    with serve_process(tmp_path, env=env) as gateway:
        token = gateway.admin_token()
        fid = await scaled_to_zero(gateway, token)
        key = await invoke_key(gateway, token)
        async with client(gateway, "invocation.localhost") as invocation:
            headers = {"Authorization": f"Bearer {key}", "NVCF-POLL-SECONDS": "1"}
            url = f"/v2/nvcf/pexec/functions/{fid}"
            queued = await invocation.post(url, json={}, headers=headers)
            full = await invocation.post(url, json={}, headers=headers)
    assert queued.status_code == 202, queued.text
    problem = assert_problem(full, 429, "too-many-requests")
    assert problem["detail"] == f"Queue of function '{fid}' is full"
    assert full.headers["retry-after"] == "1"
