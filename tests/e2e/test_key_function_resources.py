"""Issue 12 item 5 on the invocation side: a key's function resources bind status polls and Register.

Real HTTP sockets and real gRPC (scripted workers), memory and Redis queues. A request id is
readable only by its account and, for a resource-limited key, only by a key allowed on the
request's function: another key of the same account limited to another function gets 404, as for
an unknown id, and the request stays pollable by its creator. A key limited to function Y cannot
register a worker for function X.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import echo, wait_active


def only(function_id: str) -> list[dict[str, str]]:
    return [{"type": "function", "id": f"{function_id}/*"}]


async def test_status_poll_needs_a_key_allowed_on_the_function(live_gateway: LiveGateway) -> None:
    fid_x, vid_x = await live_gateway.create_deployed_function()
    fid_y, _ = await live_gateway.create_deployed_function()
    release = asyncio.Event()

    async def slow(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await release.wait()
        worker.answer(invocation.request_id, 200, b'{"done":true}')

    worker = ScriptedWorker(live_gateway.grpc_target, live_gateway.admin_token, fid_x, slow)
    await worker.start()
    await wait_active(live_gateway, fid_x, vid_x)
    creator = await live_gateway.api_key()  # account-functions: every function of the account
    key_y = await live_gateway.api_key(resources=only(fid_y))
    key_x = await live_gateway.api_key(resources=only(fid_x))
    async with live_gateway.client("invocation.localhost") as client:
        first = await client.post(
            f"/v2/nvcf/pexec/functions/{fid_x}",
            json={},
            headers={"Authorization": f"Bearer {creator}", "NVCF-POLL-SECONDS": "1"},
        )
        assert first.status_code == 202, first.text
        request_id = first.headers["nvcf-reqid"]
        status = f"/v2/nvcf/pexec/status/{request_id}"
        refused = await client.get(status, headers={"Authorization": f"Bearer {key_y}", "NVCF-POLL-SECONDS": "0"})
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == f"Request '{request_id}' not found"
        allowed = await client.get(status, headers={"Authorization": f"Bearer {key_x}", "NVCF-POLL-SECONDS": "1"})
        assert allowed.status_code == 202, allowed.text
        release.set()
        answered = await client.get(status, headers={"Authorization": f"Bearer {creator}"})
        assert answered.status_code == 200 and answered.json() == {"done": True}
    await worker.stop()


async def test_register_needs_a_key_allowed_on_the_function(live_gateway: LiveGateway) -> None:
    fid_x, vid_x = await live_gateway.create_deployed_function()
    fid_y, vid_y = await live_gateway.create_deployed_function()
    key_y = await live_gateway.api_key(scopes=["deploy_function"], resources=only(fid_y))
    refused = ScriptedWorker(live_gateway.grpc_target, key_y, fid_x, echo)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await refused.start()
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await refused.crash()
    assert not live_gateway.gateway.runtime.instances.instances(vid_x)
    allowed = ScriptedWorker(live_gateway.grpc_target, key_y, fid_y, echo)
    await allowed.start()
    await wait_active(live_gateway, fid_y, vid_y)
    await allowed.stop()
