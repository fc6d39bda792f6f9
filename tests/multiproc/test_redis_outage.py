"""Redis killed under two gateway processes: what needs no Redis keeps working, credentials are
checked against the store while invalidations cannot arrive, and sharing comes back by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import assert_problem
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import (
    GatewayProcess,
    admin_token,
    bearer,
    create_api_key,
    create_function,
    delete_api_key,
    function_version,
    pexec,
    pexec_until,
)
from tests.multiproc.test_two_processes import FAST, worker_on
from tests.multiproc.waiting import eventually, until_true
from tests.servers import RedisServer


async def test_outage_and_recovery(
    gateways: Spawn, postgres_dsn: str, redis_server_factory: Callable[..., RedisServer]
) -> None:
    redis = redis_server_factory()
    a = gateways(database=postgres_dsn, redis=redis.url, **FAST)
    b = gateways(database=postgres_dsn, redis=redis.url, **FAST)
    await asyncio.gather(a.wait_healthy(), b.wait_healthy())
    token = await admin_token(a)
    fid, _ = await create_function(a, token, minInstances=0)
    key = await create_api_key(a, token)
    assert (await pexec(b, key["value"], fid)).status_code == 202  # cached at B

    redis.kill()
    await until_true(lambda: "invalidation bus lost Redis" in b.output(), what="B noticing the outage")
    # The control plane and invocations into a process's own queue do not need Redis.
    for gateway in (a, b):
        async with gateway.client("api.localhost") as api:
            assert (await api.get("/health")).status_code == 200
            listed = await api.get("/v2/nvcf/functions", headers=bearer(token))
            assert listed.status_code == 200 and fid in {f["id"] for f in listed.json()["functions"]}
    assert (await pexec(b, key["value"], fid)).status_code == 202
    # A deletion B cannot hear about still takes effect at B: nothing is cached while the bus is down.
    await delete_api_key(a, token, key["id"])
    assert_problem(await pexec(b, key["value"], fid), 401)
    # A function created at A while Redis is down reaches B by polling the store; a worker attached
    # to B then counts at B at once, and at A once Redis is back.
    fid2, vid2 = await create_function(a, token, minInstances=1)
    worker = await _attached(b, token, fid2)
    try:
        await eventually(lambda: _status_is(b, token, fid2, vid2, "ACTIVE"), what="B's own worker counting")

        redis.start()  # empty: everything shared is rewritten by the processes themselves
        await eventually(lambda: _instances_at(a, token, fid2, vid2, 1), what="A seeing B's worker again")
        # Invalidations flow again: a new function created at A is known at B at once.
        fid3, _ = await create_function(a, token, minInstances=0)
        invoker = (await create_api_key(a, token))["value"]

        async def bus_back() -> bool:
            return "invalidation bus subscribed" in b.output().split("invalidation bus lost Redis", 1)[1]

        await eventually(bus_back, what="B resubscribing")
        fid4, _ = await create_function(a, token, minInstances=0)
        assert (await pexec_until(b, invoker, fid4, 202)).status_code == 202
        assert (await pexec_until(b, invoker, fid3, 202)).status_code == 202
    finally:
        await worker.stop()


async def _attached(gateway: GatewayProcess, token: str, fid: str) -> ScriptedWorker:
    for _ in range(100):
        try:
            return await worker_on(gateway.grpc_target, token, fid)
        except grpc.aio.AioRpcError as exc:  # PERMISSION_DENIED: unknown function (not yet polled)
            assert exc.code() == grpc.StatusCode.PERMISSION_DENIED, exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"{fid} never became known at {gateway.base}")


async def _status_is(gateway: GatewayProcess, token: str, fid: str, vid: str, status: str) -> bool:
    return bool((await function_version(gateway, token, fid, vid))["status"] == status)


async def _instances_at(gateway: GatewayProcess, token: str, fid: str, vid: str, n: int) -> bool:
    return len((await function_version(gateway, token, fid, vid))["activeInstances"]) == n
