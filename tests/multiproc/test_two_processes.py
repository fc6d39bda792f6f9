"""Two real gateway processes sharing one PostgreSQL and one Redis: what one changes, the other sees.

Control-plane and cache behaviour only: invocations are answered by a worker only in the process
the worker is attached to (the Redis queue is another module's work), so here a pexec answers 202
(queued, waiting) when the process knows the function and its caller, and 404 / 401 when not.
"""

from __future__ import annotations

import asyncio

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.control.helpers import deployment_body
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
from tests.multiproc.waiting import eventually

# Fast worker heartbeats: a dead process's instances expire after 3 of them.
FAST = {"CFGATE_WORKER_HEARTBEAT_MS": "300"}


async def start_two(gateways: Spawn, postgres_dsn: str, redis_url: str) -> tuple[GatewayProcess, GatewayProcess]:
    a = gateways(database=postgres_dsn, redis=redis_url, **FAST)
    b = gateways(database=postgres_dsn, redis=redis_url, **FAST)
    await asyncio.gather(a.wait_healthy(), b.wait_healthy())
    return a, b


async def test_a_function_created_at_a_is_invocable_at_b_and_its_deletion_too(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    fid, vid = await create_function(a, token, minInstances=0)  # scale to zero: ACTIVE at once
    invoker = (await create_api_key(a, token))["value"]
    # B never touched this function: only A's invalidation can have told B's routing cache.
    response = await pexec_until(b, invoker, fid, 202)
    assert response.status_code == 202, response.text
    assert response.headers["nvcf-status"] == "in-progress"
    async with a.client("api.localhost") as api:
        deleted = await api.delete(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=bearer(token))
        assert deleted.status_code == 204, deleted.text
    problem = assert_problem(await pexec_until(b, invoker, fid, 404), 404)
    assert fid in problem["detail"]


async def test_an_api_key_deleted_at_a_is_refused_at_b(gateways: Spawn, postgres_dsn: str, redis_url: str) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    fid, _ = await create_function(a, token, minInstances=0)
    key = await create_api_key(a, token)
    assert (await pexec(b, key["value"], fid)).status_code == 202  # B has the key in its cache now
    await delete_api_key(a, token, key["id"])
    response = await pexec_until(b, key["value"], fid, 401)
    assert_problem(response, 401)
    assert response.headers["nvcf-status"] == "errored"
    assert (await pexec(a, key["value"], fid)).status_code == 401


async def worker_on(target: str, token: str, fid: str) -> ScriptedWorker:
    async def never(_worker: ScriptedWorker, _invocation: pb.Invocation) -> None:
        return None

    worker = ScriptedWorker(target, token, fid, never)
    await worker.start()
    return worker


async def test_a_worker_on_b_makes_the_function_active_as_read_from_a(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    fid, vid = await create_function(a, token, minInstances=1)
    assert (await function_version(a, token, fid, vid))["status"] == "DEPLOYING"
    worker = await worker_on(b.grpc_target, token, fid)
    try:

        async def active_with_b_worker_at_a() -> bool:
            dto = await function_version(a, token, fid, vid)
            return dto["status"] == "ACTIVE" and len(dto["activeInstances"]) == 1

        await eventually(active_with_b_worker_at_a, what="A seeing B's worker")
        # A recomputes the status on a change of its own: B's worker still counts there.
        async with a.client("api.localhost") as api:
            url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
            updated = await api.put(
                url,
                json=deployment_body(maxInstances=2),
                headers=bearer(token),
            )
            assert updated.status_code == 200, updated.text
        assert (await function_version(a, token, fid, vid))["status"] == "ACTIVE"
        # B dies without a word: its worker's entry expires, and A moves the version to DEGRADED.
        b.kill()

        async def degraded_at_a() -> bool:
            dto = await function_version(a, token, fid, vid)
            return dto["status"] == "DEGRADED" and not dto["activeInstances"]

        await eventually(degraded_at_a, what="A noticing B's worker is gone")
    finally:
        await worker.stop()


async def test_a_worker_leaving_b_is_gone_at_a(gateways: Spawn, postgres_dsn: str, redis_url: str) -> None:
    a, b = await start_two(gateways, postgres_dsn, redis_url)
    token = await admin_token(a)
    fid, vid = await create_function(a, token, minInstances=1)
    worker = await worker_on(b.grpc_target, token, fid)

    async def instances_at_a(n: int) -> bool:
        return len((await function_version(a, token, fid, vid))["activeInstances"]) == n

    await eventually(lambda: instances_at_a(1), what="A seeing B's worker")
    await worker.stop()
    await eventually(lambda: instances_at_a(0), what="A seeing B's worker leave")
    assert (await function_version(a, token, fid, vid))["status"] == "DEGRADED"
