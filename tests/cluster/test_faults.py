"""Faults with real processes: a worker killed -9, a gateway process killed -9, Redis killed and restarted."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter

import httpx
import orjson

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.cluster.conftest import Cluster, pexec_path, restart
from tests.cluster.test_two_processes import echo, two
from tests.e2e.driver import ScriptedWorker
from tests.plugins.servers import RedisServerFactory


async def test_worker_killed_with_50_in_flight_all_answered_once(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    doomed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.cluster.hold_worker",
        b.grpc_target,
        cluster.admin_token,
        fid,
        "50",
        stdout=asyncio.subprocess.PIPE,
    )
    assert doomed.stdout is not None
    assert (await doomed.stdout.readline()).strip() == b"ready"
    async with a.client() as client:
        calls = [
            asyncio.create_task(client.post(pexec_path(fid), json={"n": i}, headers=cluster.auth)) for i in range(50)
        ]
        held = {(await doomed.stdout.readline()).split()[1].decode() for _ in range(50)}
        healthy = await cluster.worker(a, fid, echo, concurrency=50)
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 50
    assert sorted(orjson.loads(r.json()["body"])["n"] for r in responses) == list(range(50))
    answered = Counter(i.request_id for i in healthy.received)
    assert set(answered) == held == {r.headers["nvcf-reqid"] for r in responses}
    assert set(answered.values()) == {1}  # each redelivered exactly once
    assert {i.attempt for i in healthy.received} == {2}


async def test_gateway_holding_the_workers_killed_queued_work_is_served(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    started = asyncio.Event()

    async def slow(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        started.set()
        await asyncio.sleep(30)  # still in flight when its gateway dies

    await cluster.worker(b, fid, slow, concurrency=4)
    async with a.client() as client:
        calls = [
            asyncio.create_task(client.post(pexec_path(fid), json={"n": i}, headers=cluster.auth)) for i in range(30)
        ]
        await started.wait()
        await asyncio.sleep(0.3)  # the other 26 wait in the queue
        b.kill()
        took_over = await cluster.worker(a, fid, echo, concurrency=8)  # the worker moves to the survivor
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 30
    assert sorted(orjson.loads(r.json()["body"])["n"] for r in responses) == list(range(30))
    answered = Counter(i.request_id for i in took_over.received)
    assert len(answered) == 30 and set(answered.values()) == {1}
    assert Counter(i.attempt for i in took_over.received)[2] == 4  # the 4 in flight at the killed process


async def test_gateway_restarted_serves_what_was_queued(cluster: Cluster) -> None:
    fid, _ = await two(cluster)
    a, b = cluster.processes
    await cluster.worker(b, fid, lambda w, i: asyncio.sleep(30), concurrency=2)
    async with a.client() as client:
        calls = [
            asyncio.create_task(client.post(pexec_path(fid), json={"n": i}, headers=cluster.auth)) for i in range(12)
        ]
        await asyncio.sleep(1.0)
        b.kill()
        b.start()  # a new process (new id) on the same ports: the workers reconnect to it
        back = await cluster.worker(b, fid, echo, concurrency=4)
        responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * 12
    assert len({i.request_id for i in back.received}) == 12


async def test_redis_killed_and_restarted_under_load(
    redis_server_factory: RedisServerFactory, cluster_factory: object
) -> None:
    redis = redis_server_factory(appendonly=True)
    cluster: Cluster = cluster_factory(redis.url)  # type: ignore[operator]
    fid, _ = await two(cluster)
    a, b = cluster.processes
    worker = await cluster.worker(b, fid, echo, concurrency=16)
    outcomes: list[int] = []
    stop = asyncio.Event()

    async def load(client: httpx.AsyncClient, n: int) -> None:
        while not stop.is_set():
            response = await client.post(pexec_path(fid), json={"n": n}, headers=cluster.auth)
            outcomes.append(response.status_code)
            if response.status_code == 503:
                assert response.headers["content-type"] == "application/problem+json"
                await asyncio.sleep(0.05)

    async with a.client(timeout=60.0) as client:
        loaders = [asyncio.create_task(load(client, n)) for n in range(8)]
        await asyncio.sleep(1.5)
        redis.kill()
        # The loaders may all be waiting on accepted invocations (their answers cross Redis):
        # new requests, from another connection, are refused at once.
        async with a.client(timeout=10.0) as probe:
            refused = await probe.post(pexec_path(fid), json={}, headers=cluster.auth)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        await asyncio.sleep(1.0)
        await restart(redis)
        recovered = len(outcomes)
        deadline = time.monotonic() + 60
        while Counter(outcomes[recovered:])[200] < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*loaders)  # every accepted request was answered: none hangs
        after = [(await client.post(pexec_path(fid), json={}, headers=cluster.auth)).status_code for _ in range(10)]
    assert set(outcomes) <= {200, 503}
    assert Counter(outcomes[recovered:])[200] >= 40
    assert after == [200] * 10
    assert len(worker.received) >= Counter(outcomes)[200]
