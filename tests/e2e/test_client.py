"""``gateway.client``: invoke() follows 202s to the result, fetches 302 large results, raises problems."""

from __future__ import annotations

import asyncio

import pytest

from gateway.client import AsyncInvoker, InvocationError, Invoker
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker
from tests.e2e.test_invoke_scripted import start_worker, wait_active


async def test_async_invoke_polls_through_202s_and_reports_progress(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    finish = asyncio.Event()

    async def progressing(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        worker.send(pb.WorkerMessage(progress=[pb.Progress(request_id=rid, percent=30, partial_response=b"{}")]))
        await finish.wait()
        worker.answer(rid, 200, b'{"final":true}')

    worker = await start_worker(live_gateway, fid, progressing)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    seen: list[tuple[str, int | None]] = []

    def on_progress(request_id: str, percent: int | None) -> None:
        seen.append((request_id, percent))
        finish.set()

    async with AsyncInvoker(live_gateway.base, key, poll_seconds=1) as nvcf:
        result = await nvcf.invoke(fid, {"x": 1}, on_progress=on_progress)
    assert result.status == 200 and result.json() == {"final": True}
    assert result.polls >= 1 and not result.downloaded
    assert seen[0] == (result.request_id, 30)
    await worker.stop()


async def test_sync_invoke_downloads_a_large_result(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    payload = b"PK\x03\x04" + b"q" * 2000

    async def large(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        start = pb.ResponseStart(request_id=rid, status=200, kind=pb.LARGE_RESULT)
        chunk = pb.ResponseChunk(request_id=rid, data=payload)
        worker.send(pb.WorkerMessage(credits=1, starts=[start], chunks=[chunk], ends=[pb.ResponseEnd(request_id=rid)]))

    worker = await start_worker(live_gateway, fid, large)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()

    def call() -> tuple[int, bytes, bool, str]:
        with Invoker(live_gateway.base, key) as nvcf:
            result = nvcf.invoke(fid, {})
        return result.status, result.content, result.downloaded, result.headers["content-type"]

    # The gateway runs on this loop: the blocking client runs in a thread.
    assert await asyncio.to_thread(call) == (200, payload, True, "application/zip")
    await worker.stop()


async def test_a_problem_answer_raises_with_its_status_and_body(live_gateway: LiveGateway) -> None:
    key = await live_gateway.api_key()
    missing = "00000000-0000-4000-8000-000000000000"
    async with AsyncInvoker(live_gateway.base, key) as nvcf:
        with pytest.raises(InvocationError) as failure:
            await nvcf.invoke(missing, {})
    assert failure.value.status == 404
    assert failure.value.problem is not None
    assert failure.value.problem["status"] == 404
    assert missing in failure.value.problem["detail"]
