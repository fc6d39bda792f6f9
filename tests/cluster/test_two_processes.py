"""Two real gateway processes on one Redis: the client on one, the worker on the other."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from redis.asyncio import Redis

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.cluster.conftest import Cluster, pexec_path
from tests.e2e.driver import ScriptedWorker


async def echo(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    worker.answer(invocation.request_id, 200, orjson.dumps({"body": invocation.body.decode()}))


async def hold(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    await asyncio.Event().wait()


async def two(cluster: Cluster) -> tuple[str, str]:
    """Start A, deploy a function through it, then start B (which loads the function at start-up)."""
    first = cluster.add()
    await cluster.bootstrap(first)
    fid, vid = await cluster.deployed_function(first)
    cluster.add()
    return fid, vid


async def test_accepted_by_one_answered_through_a_worker_on_the_other(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    worker = await cluster.worker(b, fid, echo)
    async with a.client() as client:
        responses = await asyncio.gather(
            *(client.post(pexec_path(fid), json={"n": i}, headers=cluster.auth) for i in range(10))
        )
    assert [r.status_code for r in responses] == [200] * 10
    assert sorted(orjson.loads(r.json()["body"])["n"] for r in responses) == list(range(10))
    assert all(r.headers["nvcf-status"] == "fulfilled" for r in responses)
    assert {r.headers["nvcf-reqid"] for r in responses} == {i.request_id for i in worker.received}


async def test_202_polled_on_the_process_that_did_not_accept(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    release = asyncio.Event()

    async def progress_then_answer(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        worker.send(pb.WorkerMessage(progress=[pb.Progress(request_id=rid, percent=30, partial_response=b'{"p":1}')]))
        await release.wait()
        worker.answer(rid, 200, b'{"done":true}')

    await cluster.worker(a, fid, progress_then_answer)  # the worker sits with the accepting process
    async with a.client() as on_a, b.client() as on_b:
        first = await on_a.post(pexec_path(fid), json={}, headers={**cluster.auth, "NVCF-POLL-SECONDS": "1"})
        assert first.status_code == 202
        assert first.headers["nvcf-status"] == "in-progress"
        assert first.headers["nvcf-percent-complete"] == "30"
        rid = first.headers["nvcf-reqid"]
        pending = await on_b.get(f"/v2/nvcf/pexec/status/{rid}", headers={**cluster.auth, "NVCF-POLL-SECONDS": "1"})
        assert pending.status_code == 202
        assert pending.headers["nvcf-reqid"] == rid and pending.headers["nvcf-status"] == "in-progress"
        release.set()
        done = await on_b.get(f"/v2/nvcf/pexec/status/{rid}", headers=cluster.auth)
        assert done.status_code == 200, done.text
        assert done.json() == {"done": True}
        assert done.headers["nvcf-reqid"] == rid and done.headers["nvcf-status"] == "fulfilled"
        again_b = await on_b.get(f"/v2/nvcf/pexec/status/{rid}", headers=cluster.auth)
        again_a = await on_a.get(f"/v2/nvcf/pexec/status/{rid}", headers=cluster.auth)
    assert (again_b.status_code, again_a.status_code) == (404, 404)  # delivered once, then gone everywhere
    assert again_a.headers["content-type"] == "application/problem+json"


async def test_202_with_the_worker_on_the_other_process(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    release = asyncio.Event()

    async def slow(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await release.wait()
        worker.answer(invocation.request_id, 201, b'{"late":1}')

    await cluster.worker(b, fid, slow)
    async with a.client() as on_a, b.client() as on_b:
        first = await on_a.post(pexec_path(fid), json={}, headers={**cluster.auth, "NVCF-POLL-SECONDS": "1"})
        assert first.status_code == 202
        release.set()
        done = await on_b.get(f"/v2/nvcf/pexec/status/{first.headers['nvcf-reqid']}", headers=cluster.auth)
    assert done.status_code == 201 and done.json() == {"late": 1}


async def test_event_stream_arrives_chunk_by_chunk_across_processes(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    gate = asyncio.Event()

    async def sse(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        rid = invocation.request_id
        start = pb.ResponseStart(
            request_id=rid, status=200, headers=[pb.Header(key="content-type", value="text/event-stream")]
        )
        worker.send(pb.WorkerMessage(starts=[start], chunks=[pb.ResponseChunk(request_id=rid, data=b"data: 1\n\n")]))
        await gate.wait()
        worker.send(pb.WorkerMessage(chunks=[pb.ResponseChunk(request_id=rid, data=b"data: 2\n\n")]))
        await asyncio.sleep(0.05)
        worker.send(
            pb.WorkerMessage(
                credits=1,
                chunks=[pb.ResponseChunk(request_id=rid, data=b"data: 3\n\n")],
                ends=[pb.ResponseEnd(request_id=rid)],
            )
        )

    await cluster.worker(b, fid, sse)
    headers = {**cluster.auth, "Accept": "text/event-stream"}
    async with a.client() as client:
        async with client.stream("POST", pexec_path(fid), json={}, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            chunks = response.aiter_raw()
            assert await anext(chunks) == b"data: 1\n\n"  # before the worker sent the rest
            gate.set()
            rest = b"".join([c async for c in chunks])
    assert rest == b"data: 2\n\ndata: 3\n\n"


async def test_client_disconnect_cancels_at_the_worker_on_the_other_process(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    worker = await cluster.worker(b, fid, hold)
    async with a.client() as client:
        call = asyncio.create_task(client.post(pexec_path(fid), json={}, headers=cluster.auth))
        while not worker.received:
            await asyncio.sleep(0.02)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    for _ in range(300):
        if worker.cancelled:
            break
        await asyncio.sleep(0.02)
    assert worker.cancelled == [worker.received[0].request_id]


async def test_worker_in_the_clients_process_replies_without_redis(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, _b = cluster.processes
    worker = await cluster.worker(a, fid, echo)
    async with a.client() as client:
        responses = [await client.post(pexec_path(fid), json={"n": i}, headers=cluster.auth) for i in range(5)]
    assert [r.status_code for r in responses] == [200] * 5 and len(worker.received) == 5
    redis = Redis.from_url(cluster.redis_url)
    try:
        assert await redis.keys("cfgate:*:replies") == []  # no reply stream was ever written
    finally:
        await redis.aclose()
