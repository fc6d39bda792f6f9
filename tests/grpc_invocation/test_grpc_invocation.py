"""gRPC invocation end to end: a real grpcio client → ``cfgate serve`` (a process) → a worker
process → a real gRPC server container process; all four call kinds, metadata auth, sessions,
cancellation, deadlines and the error statuses (the worker-port mistake: tests/gateway/test_grpc_ports.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.grpc_invocation import calls
from tests.grpc_invocation.stack import (
    GrpcFunction,
    admin_token,
    api_key,
    deploy_grpc_function,
    start_container,
    start_worker,
    stop,
    wait_status,
)
from tests.support.serve_process import ServeProcess, serve_process

QUEUE_BOUND = 2
MiB = 1 << 20
BYTE_BUDGET = 5 * MiB


@dataclass
class Live:
    gateway: ServeProcess
    token: str
    key: str
    function: GrpcFunction
    # A deployed function whose only worker left (DEGRADED: invocable, nobody takes its calls).
    orphan: GrpcFunction
    limited: GrpcFunction  # rateLimit 1-M
    unhealthy: GrpcFunction  # its container's health service answers NOT_SERVING
    worker_pid: int  # the worker of ``function``


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("grpc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_") or k == "CFGATE_NO_EXTENSIONS"}
    env["CFGATE_MAX_QUEUE_DEPTH"] = str(QUEUE_BOUND)
    env["CFGATE_MAX_QUEUED_BODY_BYTES"] = str(BYTE_BUDGET)
    with serve_process(tmp, env=env) as gateway:
        container, port = start_container(tmp / "container")
        sick, sick_port = start_container(tmp / "sick", serving=False)
        procs: list[subprocess.Popen[bytes]] = [container, sick]
        try:

            async def setup() -> Live:
                token = await admin_token(gateway.base)
                function = await deploy_grpc_function(gateway.base, token, port, tmp / "container")
                orphan = await deploy_grpc_function(gateway.base, token, port, tmp / "container")
                limited = await deploy_grpc_function(
                    gateway.base, token, port, tmp / "container", rateLimit={"rateLimit": "1-M"}
                )
                procs.append(start_worker(gateway.grpc_target, token, function, tmp / "worker.log"))
                procs.append(start_worker(gateway.grpc_target, token, limited, tmp / "worker-limited.log"))
                unhealthy = await deploy_grpc_function(gateway.base, token, sick_port, tmp / "sick")
                procs.append(start_worker(gateway.grpc_target, token, unhealthy, tmp / "worker-sick.log"))
                leaving = start_worker(gateway.grpc_target, token, orphan, tmp / "worker-orphan.log")
                await wait_status(gateway.base, token, function, "ACTIVE")
                await wait_status(gateway.base, token, orphan, "ACTIVE")
                await wait_status(gateway.base, token, limited, "ACTIVE")
                await wait_status(gateway.base, token, unhealthy, "ACTIVE")
                stop(leaving)
                await wait_status(gateway.base, token, orphan, "DEGRADED")
                key = await api_key(gateway.base, token)
                return Live(gateway, token, key, function, orphan, limited, unhealthy, procs[2].pid)

            yield asyncio.run(setup())
        finally:
            for proc in procs:
                stop(proc)


@pytest.fixture
async def channel(live: Live) -> object:
    async with grpc.aio.insecure_channel(live.gateway.grpc_invocation) as channel:
        yield channel


async def test_unary_server_client_and_bidi_streaming_calls_are_relayed(live: Live, channel: grpc.aio.Channel) -> None:
    await calls.check_all_call_kinds(channel, live.key, live.function)


async def test_metadata_reaches_the_container_and_nvcf_reqid_resumes_a_session(
    live: Live, channel: grpc.aio.Channel
) -> None:
    await calls.check_metadata_and_sessions(channel, live.key, live.function)


async def test_binary_metadata_and_rich_error_details_are_relayed_both_ways(
    live: Live, channel: grpc.aio.Channel
) -> None:
    await calls.check_binary_metadata_and_rich_status(channel, live.key, live.function)


async def test_cancel_and_deadline_reach_the_container_and_its_status_is_relayed(
    live: Live, channel: grpc.aio.Channel
) -> None:
    await calls.check_cancel_and_deadline(channel, live.key, live.function)


async def test_credentials_and_functions_answer_with_grpc_statuses(live: Live, channel: grpc.aio.Channel) -> None:
    base = live.gateway.base
    no_scope = await api_key(base, live.token, scopes=["list_functions"])
    elsewhere = await api_key(base, live.token, resources=[{"type": "function", "id": f"{live.orphan.function_id}/*"}])
    await calls.check_auth_errors(channel, live.key, live.function, no_scope_key=no_scope, other_function_key=elsewhere)


async def test_no_worker_within_the_poll_window_is_unavailable_and_the_queue_bound_resource_exhausted(
    live: Live, channel: grpc.aio.Channel
) -> None:
    waiting = calls.meta(live.key, live.orphan, nvcf_poll_seconds="1")
    call = calls.unary_method(channel, "/test.Echo/Unary")(b"x", metadata=waiting)
    assert await calls.status_of(call) == grpc.StatusCode.UNAVAILABLE
    holding = calls.meta(live.key, live.orphan, nvcf_poll_seconds="5")
    held = [calls.unary_method(channel, "/test.Echo/Unary")(b"x", metadata=holding) for _ in range(QUEUE_BOUND)]
    await asyncio.sleep(0.5)
    over = calls.unary_method(channel, "/test.Echo/Unary")(b"x", metadata=holding)
    assert await calls.status_of(over) == grpc.StatusCode.RESOURCE_EXHAUSTED
    for waiting_call in held:
        waiting_call.cancel()


async def test_request_messages_count_against_the_byte_budget(live: Live, channel: grpc.aio.Channel) -> None:
    """As HTTP bodies: held while queued, over the process's budget RESOURCE_EXHAUSTED, freed at the end."""
    body = b"b" * (3 * MiB)
    holding = calls.meta(live.key, live.orphan, nvcf_poll_seconds="10")
    held = calls.unary_method(channel, "/test.Echo/Unary")(body, metadata=holding)
    await asyncio.sleep(1.0)  # queued, nobody takes it: its 3 MiB are held
    with pytest.raises(grpc.aio.AioRpcError) as over:
        await calls.unary(channel, "/test.Echo/Unary", body, calls.meta(live.key, live.function))
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert over.value.details() == "Too many request bytes queued in this gateway process; retry later"
    held.cancel()
    assert await calls.status_of(held) == grpc.StatusCode.CANCELLED
    await asyncio.sleep(0.5)
    answered = await calls.unary(channel, "/test.Echo/Unary", body, calls.meta(live.key, live.function))
    assert await answered == b"echo:" + body


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak resident memory so far
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def test_a_client_stream_faster_than_the_container_reads_does_not_grow_memory(
    live: Live, channel: grpc.aio.Channel
) -> None:
    """96 MiB written at full speed to a container reading 512 KiB per 20 ms: the gateway and the
    worker hold a window of it, not all of it."""
    piece = b"p" * (512 << 10)
    count = 192

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield piece

    gateway_before, worker_before = _rss(live.gateway.proc.pid), _rss(live.worker_pid)
    drip: grpc.aio.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary("/test.Echo/Drip")
    got = await drip(pieces(), metadata=calls.meta(live.key, live.function), timeout=60)
    assert got == b"%d" % (count * len(piece))
    gateway_grown = _rss(live.gateway.proc.pid) - gateway_before
    worker_grown = _rss(live.worker_pid) - worker_before
    # The worker holds the window (it grew 88 MiB without it). The gateway's peak also carries
    # gRPC core's HTTP/2 receive buffers and the allocator's slack: 40 MiB was seen once in a full
    # CI run, so its bound is "well under the whole stream", not the window itself.
    assert worker_grown < 32 * MiB, (gateway_grown, worker_grown)
    assert gateway_grown < count * len(piece) // 2, (gateway_grown, worker_grown)


async def test_the_function_rate_limit_is_resource_exhausted(live: Live, channel: grpc.aio.Channel) -> None:
    metadata = calls.meta(live.key, live.limited)
    first = await calls.unary(channel, "/test.Echo/Unary", b"one", metadata)
    assert await first == b"echo:one"
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await calls.unary(channel, "/test.Echo/Unary", b"two", metadata)
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limited.value.details() == f"Rate limit exceeded for function '{live.limited.function_id}' (rate 1-M)"


async def test_a_container_whose_health_service_is_not_serving_is_unavailable(
    live: Live, channel: grpc.aio.Channel
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await calls.unary(channel, "/test.Echo/Unary", b"x", calls.meta(live.key, live.unhealthy))
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down.value.details() == "the container's gRPC health service answers NOT_SERVING"


def test_the_readme_example_with_a_blocking_channel(live: Live) -> None:
    """README "gRPC invocation": grpcio's blocking API, generic calls, a resumed session."""
    metadata = (("authorization", f"Bearer {live.key}"), ("function-id", live.function.function_id))
    with grpc.insecure_channel(live.gateway.grpc_invocation) as channel:
        say: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/test.Echo/Unary")
        reply, call = say.with_call(b"world", metadata=metadata)
        session = dict(call.initial_metadata())["nvcf-reqid"]
        again = say(b"you", metadata=(*metadata, ("nvcf-reqid", session)))
        many: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream("/test.Echo/ServerStream")
        items = list(many(b"2", metadata=metadata))
    assert (reply, again, items) == (b"echo:world", b"echo:you", [b"item-0", b"item-1"])
