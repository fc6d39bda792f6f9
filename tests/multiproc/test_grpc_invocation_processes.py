"""gRPC invocation across gateway processes: ``--processes 2 --redis``, the worker attached to one
of them, clients on fresh connections spread by the kernel over both (each call kind, sessions
resumed by ``nvcf-reqid`` through Redis, a cancel that reaches the container)."""

from __future__ import annotations

import grpc

from tests.grpc_invocation import calls
from tests.grpc_invocation.stack import (
    admin_token,
    api_key,
    deploy_grpc_function,
    start_container,
    start_worker,
    stop,
    wait_status,
)
from tests.multiproc.conftest import Spawn
from tests.multiproc.test_processes_flag import processes_answering


async def test_grpc_calls_through_two_gateway_processes_on_redis(
    gateways: Spawn, postgres_dsn: str, redis_url: str, tmp_path: object
) -> None:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    gateway = gateways(database=postgres_dsn, redis=redis_url, processes=2)
    await gateway.wait_healthy()
    assert len(await processes_answering(gateway, 2)) == 2
    container, port = start_container(tmp / "container")
    worker = None
    try:
        token = await admin_token(gateway.base)
        function = await deploy_grpc_function(gateway.base, token, port, tmp / "container")
        worker = start_worker(gateway.grpc_target, token, function, tmp / "worker.log")
        await wait_status(gateway.base, token, function, "ACTIVE")
        key = await api_key(gateway.base, token)
        # A fresh channel (connection) per round: the kernel spreads them over both processes,
        # so most rounds have the client and the worker in different processes.
        for _ in range(4):
            async with grpc.aio.insecure_channel(
                gateway.invocation_target, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                await calls.check_all_call_kinds(channel, key, function)
                await calls.check_metadata_and_sessions(channel, key, function)
                await calls.check_binary_metadata_and_rich_status(channel, key, function)
                await calls.check_long_client_stream(channel, key, function)
        async with grpc.aio.insecure_channel(gateway.invocation_target) as channel:
            await calls.check_cancel_and_deadline(channel, key, function)
    finally:
        if worker is not None:
            stop(worker)
        stop(container)
