"""Gateway invocation behaviour against scripted workers over real gRPC and real HTTP sockets."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.conftest import LiveGateway
from tests.e2e.driver import ScriptedWorker


async def echo(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    headers = {h.key.lower(): h.value for h in invocation.headers}
    body = orjson.dumps({"path": invocation.path, "body": invocation.body.decode(), "headers": headers})
    worker.answer(invocation.request_id, 200, body)


async def wait_active(live: LiveGateway, function_id: str, version_id: str) -> None:
    for _ in range(200):
        route = live.gateway.runtime.routes.get(function_id)
        if route is not None and route.versions[version_id].status == "ACTIVE":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("function did not become ACTIVE")


async def start_worker(
    live: LiveGateway, function_id: str, reply: object = echo, concurrency: int = 4
) -> ScriptedWorker:
    worker = ScriptedWorker(live.grpc_target, live.admin_token, function_id, reply, concurrency)  # type: ignore[arg-type]
    await worker.start()
    return worker


async def test_pexec_round_trip(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        response = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={"hello": "world"},
            headers={"Authorization": f"Bearer {key}", "X-Custom": "1"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["nvcf-status"] == "fulfilled"
    uuid.UUID(response.headers["nvcf-reqid"])
    seen = response.json()
    assert seen["path"] == "/echo"
    assert orjson.loads(seen["body"]) == {"hello": "world"}
    assert seen["headers"]["x-custom"] == "1"
    assert "authorization" not in seen["headers"] and "host" not in seen["headers"]
    assert worker.received[0].subject == "svc@nvcf-api.local"
    await worker.stop()


async def test_poll_window_gives_202_then_status_answers(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    release = asyncio.Event()

    async def slow(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await release.wait()
        worker.answer(invocation.request_id, 200, b'{"done":true}')

    worker = await start_worker(live_gateway, fid, slow)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with live_gateway.client("invocation.localhost") as client:
        first = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={**auth, "NVCF-POLL-SECONDS": "1"}
        )
        assert first.status_code == 202
        assert first.headers["nvcf-status"] == "in-progress"
        request_id = first.headers["nvcf-reqid"]
        release.set()
        polled = await client.get(f"/v2/nvcf/pexec/status/{request_id}", headers=auth)
        assert polled.status_code == 200 and polled.json() == {"done": True}
        assert polled.headers["nvcf-reqid"] == request_id
        again = await client.get(f"/v2/nvcf/pexec/status/{request_id}", headers=auth)
        assert again.status_code == 404  # a delivered result is gone
    await worker.stop()


async def test_lost_worker_redelivers_to_another(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()

    async def never(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await asyncio.Event().wait()

    doomed = await start_worker(live_gateway, fid, never)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        call = asyncio.create_task(
            client.post(f"/v2/nvcf/pexec/functions/{fid}", json={"n": 1}, headers={"Authorization": f"Bearer {key}"})
        )
        while not doomed.received:
            await asyncio.sleep(0.01)
        healthy = await start_worker(live_gateway, fid)
        await doomed.crash()
        response = await call
    assert response.status_code == 200
    assert healthy.received[0].attempt == 2
    await healthy.stop()


async def test_direct_invocation_by_host_and_header(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with httpx.AsyncClient(base_url=live_gateway.base, timeout=30) as client:
        by_host = await client.put(
            "/v1/things?x=1",
            content=b"abc",
            headers={"Host": f"{fid}.invocation.localhost", "Authorization": f"Bearer {key}"},
        )
        by_header = await client.get(
            "/other", headers={"Host": "invocation.localhost", "function-id": fid, "Authorization": f"Bearer {key}"}
        )
    assert by_host.status_code == 200 and by_host.json()["path"] == "/v1/things?x=1"
    assert by_header.status_code == 200 and by_header.json()["path"] == "/other"
    assert [i.method for i in worker.received] == ["PUT", "GET"]
    assert not worker.received[0].compat
    await worker.stop()


async def test_streamed_answer_arrives_before_the_end(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    gate = asyncio.Event()

    async def sse(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        start = pb.ResponseStart(
            request_id=rid, status=200, headers=[pb.Header(key="content-type", value="text/event-stream")]
        )
        worker.send(pb.WorkerMessage(starts=[start], chunks=[pb.ResponseChunk(request_id=rid, data=b"data: 1\n\n")]))
        await gate.wait()
        worker.send(
            pb.WorkerMessage(
                credits=1,
                chunks=[pb.ResponseChunk(request_id=rid, data=b"data: 2\n\n")],
                ends=[pb.ResponseEnd(request_id=rid)],
            )
        )

    worker = await start_worker(live_gateway, fid, sse)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    async with live_gateway.client("invocation.localhost") as client:
        async with client.stream("POST", f"/v2/nvcf/pexec/functions/{fid}", json={}, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.aiter_raw()
            assert await anext(chunks) == b"data: 1\n\n"
            gate.set()
            rest = b"".join([c async for c in chunks])
    assert rest == b"data: 2\n\n"
    await worker.stop()


@pytest.mark.parametrize("value", ["-1", "3601", "abc"])
async def test_bad_poll_seconds_is_400(live_gateway: LiveGateway, value: str) -> None:
    fid, _ = await live_gateway.create_deployed_function()
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        response = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={},
            headers={"Authorization": f"Bearer {key}", "NVCF-POLL-SECONDS": value},
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_progress_gives_202_with_percent_then_result(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    finish = asyncio.Event()

    async def progressing(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        worker.send(
            pb.WorkerMessage(progress=[pb.Progress(request_id=rid, percent=40, partial_response=b'{"step":2}')])
        )
        await finish.wait()
        worker.answer(rid, 200, b'{"final":1}')

    worker = await start_worker(live_gateway, fid, progressing)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with live_gateway.client("invocation.localhost") as client:
        first = await client.post(f"/v2/nvcf/pexec/functions/{fid}", json={}, headers=auth)
        assert first.status_code == 202
        assert first.headers["nvcf-percent-complete"] == "40"
        assert first.json() == {"step": 2}
        finish.set()
        done = await client.get(f"/v2/nvcf/pexec/status/{first.headers['nvcf-reqid']}", headers=auth)
    assert done.status_code == 200 and done.json() == {"final": 1}
    assert worker.received[0].compat
    await worker.stop()


async def test_large_result_is_302_to_a_download(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    payload = b"PK\x03\x04" + b"z" * 1000

    async def large(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        start = pb.ResponseStart(request_id=rid, status=200, kind=pb.LARGE_RESULT)
        worker.send(pb.WorkerMessage(starts=[start], chunks=[pb.ResponseChunk(request_id=rid, data=payload[:500])]))
        worker.send(
            pb.WorkerMessage(
                credits=1,
                chunks=[pb.ResponseChunk(request_id=rid, data=payload[500:])],
                ends=[pb.ResponseEnd(request_id=rid)],
            )
        )

    worker = await start_worker(live_gateway, fid, large)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        response = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 302
        location = httpx.URL(response.headers["location"])
        assert location.host == "invocation.localhost"  # the host the client used
        target = location.raw_path.decode()
        download = await client.get(target, headers={"Host": location.netloc.decode()})
        assert download.status_code == 200 and download.content == payload
        assert download.headers["content-type"] == "application/zip"
        tampered = await client.get(target.replace("signature=", "signature=0"))
        assert tampered.status_code == 403
    await worker.stop()


async def test_inactive_function_is_404_and_resource_less_key_is_403(live_gateway: LiveGateway) -> None:
    headers = {"Authorization": f"Bearer {live_gateway.admin_token}"}
    async with live_gateway.client("api.localhost") as api:
        created = await api.post(
            "/v2/nvcf/functions",
            json=__import__("tests.control.helpers", fromlist=["x"]).function_body(),
            headers=headers,
        )
    fid = created.json()["function"]["id"]
    key = await live_gateway.api_key()
    other_fid, _ = await live_gateway.create_deployed_function()
    narrow = await live_gateway.api_key(resources=[{"type": "function", "id": f"{fid}/*"}])
    async with live_gateway.client("invocation.localhost") as client:
        inactive = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
        )
        assert inactive.status_code == 404
        assert inactive.headers["nvcf-status"] == "errored"
        forbidden = await client.post(
            f"/v2/nvcf/pexec/functions/{other_fid}", json={}, headers={"Authorization": f"Bearer {narrow}"}
        )
        assert forbidden.status_code == 403
        assert forbidden.json()["detail"] == "Missing resource entry in ApiKey for the function"


async def test_client_disconnect_cancels_at_the_worker(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()

    async def hold(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await asyncio.Event().wait()

    worker = await start_worker(live_gateway, fid, hold)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        call = asyncio.create_task(
            client.post(f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"})
        )
        while not worker.received:
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    for _ in range(200):
        if worker.cancelled:
            break
        await asyncio.sleep(0.02)
    assert worker.cancelled == [worker.received[0].request_id]
    await worker.stop()


async def test_rate_limit_is_429(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function(rateLimit={"rateLimit": "2-M"})
    worker = await start_worker(live_gateway, fid)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        codes = [
            (
                await client.post(
                    f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
                )
            ).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]
    await worker.stop()


async def test_input_assets_reach_the_worker(live_gateway: LiveGateway) -> None:
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    auth = {"Authorization": f"Bearer {key}"}
    async with live_gateway.client("api.localhost") as api:
        asset = (
            await api.post("/v2/nvcf/assets", json={"contentType": "image/png", "description": "pic"}, headers=auth)
        ).json()
        upload = httpx.URL(asset["uploadUrl"])
        put = await api.put(
            upload.raw_path.decode(),
            content=b"\x89PNG-bytes",
            headers={"Content-Type": "image/png", "x-amz-meta-nvcf-asset-description": "pic"},
        )
        assert put.status_code == 200, put.text
    async with live_gateway.client("invocation.localhost") as client:
        missing = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={},
            headers={**auth, "NVCF-INPUT-ASSET-REFERENCES": str(uuid.uuid4())},
        )
        assert missing.status_code == 404
        ok = await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={},
            headers={**auth, "NVCF-INPUT-ASSET-REFERENCES": asset["assetId"]},
        )
        assert ok.status_code == 200
    (sent,) = worker.received[-1].assets
    assert sent.asset_id == asset["assetId"] and sent.content_type == "image/png"
    assert sent.url.startswith("/v2/nvcf/assets/")
    async with httpx.AsyncClient(base_url=live_gateway.base, headers={"Host": "api.localhost"}) as raw:
        fetched = await raw.get(sent.url)
    assert fetched.status_code == 200 and fetched.content == b"\x89PNG-bytes"
    await worker.stop()


async def test_answered_invocations_leave_the_queue(live_gateway: LiveGateway) -> None:
    """Acks go off the worker-stream reader (batched with Redis): every answered entry still ends."""
    fid, vid = await live_gateway.create_deployed_function()
    worker = await start_worker(live_gateway, fid, concurrency=16)
    await wait_active(live_gateway, fid, vid)
    key = await live_gateway.api_key()
    async with live_gateway.client("invocation.localhost") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v2/nvcf/pexec/functions/{fid}", json={"n": i}, headers={"Authorization": f"Bearer {key}"}
                )
                for i in range(40)
            )
        )
    assert [r.status_code for r in responses] == [200] * 40
    queue = live_gateway.gateway.runtime.queues
    request_ids = [r.headers["nvcf-reqid"] for r in responses]
    for _ in range(200):
        left = [rid for rid in request_ids if await queue.position(rid) is not None]
        if not left:
            break
        await asyncio.sleep(0.02)
    assert left == []  # neither waiting nor in flight: acked
    assert await queue.depth(vid) == 0
    await worker.stop()
