"""Redis killed, or hung, under two gateway processes: what needs no Redis keeps working and does not
hang, credentials are checked against the store while invalidations cannot arrive, and sharing
comes back by itself.

(Redis is restarted only while this test process holds no grpc channel: forking after grpc is
initialised can crash the forking process, so the worker test freezes Redis instead of killing it.)
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

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


async def start_two(gateways: Spawn, postgres_dsn: str, url: str) -> tuple[GatewayProcess, GatewayProcess]:
    # At INFO: the test reads B's "invalidation bus subscribed" (the fixture's default is WARNING).
    a = gateways(database=postgres_dsn, redis=url, **FAST, CFGATE_LOG_LEVEL="info")
    b = gateways(database=postgres_dsn, redis=url, **FAST, CFGATE_LOG_LEVEL="info")
    await asyncio.gather(a.wait_healthy(), b.wait_healthy())
    return a, b


async def test_redis_killed_and_restarted(
    gateways: Spawn, postgres_dsn: str, redis_server_factory: Callable[..., RedisServer]
) -> None:
    redis = redis_server_factory()
    a, b = await start_two(gateways, postgres_dsn, redis.url)
    token = await admin_token(a)
    fid, _ = await create_function(a, token, minInstances=0)
    key = await create_api_key(a, token)
    assert (await pexec(b, key["value"], fid)).status_code == 202  # cached at B

    redis.kill()
    await until_true(lambda: "invalidation bus lost Redis" in b.output(), what="B noticing the outage")
    # The control plane does not need Redis; invocations do (their queue is in Redis): 503, at once.
    for gateway in (a, b):
        async with gateway.client("api.localhost") as api:
            assert (await api.get("/health")).status_code == 200
            listed = await api.get("/v2/nvcf/functions", headers=bearer(token))
            assert listed.status_code == 200 and fid in {f["id"] for f in listed.json()["functions"]}
    assert_problem(await pexec(b, key["value"], fid), 503)
    # A deletion B cannot hear about still takes effect at B: nothing is cached while the bus is down.
    await delete_api_key(a, token, key["id"])
    assert_problem(await pexec(b, key["value"], fid), 401)
    # A function created at A meanwhile reaches B by polling the store: B knows it (503, not 404).
    invoker = (await create_api_key(a, token))["value"]
    during, _ = await create_function(a, token, minInstances=0)
    assert (await pexec_until(b, invoker, during, 503)).status_code == 503

    redis.start()  # empty: what is shared is rewritten by the processes themselves

    async def resubscribed() -> bool:
        return "invalidation bus subscribed" in b.output().split("invalidation bus lost Redis", 1)[1]

    await eventually(resubscribed, what="B resubscribing")
    after, _ = await create_function(a, token, minInstances=0)
    assert (await pexec_until(b, invoker, after, 202)).status_code == 202
    assert (await pexec_until(b, invoker, during, 202)).status_code == 202


async def test_a_worker_attached_while_redis_hangs_counts_everywhere_once_it_answers(
    gateways: Spawn, postgres_dsn: str, redis_server_factory: Callable[..., RedisServer]
) -> None:
    redis = redis_server_factory()
    a, b = await start_two(gateways, postgres_dsn, redis.url)
    token = await admin_token(a)
    fid, vid = await create_function(a, token, minInstances=1)
    pid = redis.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung, not gone: every Redis call times out
    try:
        worker = await worker_on(b.grpc_target, token, fid)  # does not hang on Redis
        try:

            async def active_at_b() -> bool:
                dto = await function_version(b, token, fid, vid)
                return dto["status"] == "ACTIVE" and len(dto["activeInstances"]) == 1

            await eventually(active_at_b, what="B counting its own worker")
            assert (await function_version(a, token, fid, vid))["activeInstances"] == []
            os.kill(pid, signal.SIGCONT)

            async def seen_at_a() -> bool:
                return len((await function_version(a, token, fid, vid))["activeInstances"]) == 1

            await eventually(seen_at_a, what="A seeing B's worker once Redis answers")
        finally:
            await worker.stop()
    finally:
        os.kill(pid, signal.SIGCONT)
