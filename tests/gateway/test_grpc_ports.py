"""The gRPC invocation port (NVCF's 10081) and the worker port are apart: a worker pointed at the
invocation port, as the old default had it, is refused with FAILED_PRECONDITION and exits."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import uuid
from pathlib import Path

import grpc
import pytest

from gateway.app import Gateway
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}"


async def test_the_worker_service_is_on_the_worker_port_only(gateway: Gateway) -> None:
    assert gateway.grpc_port and gateway.worker_port and gateway.grpc_port != gateway.worker_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            await stub.Register(pb.RegisterRequest(credential="x"), timeout=10)
    assert wrong.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert wrong.value.details() == (
        "this is the gateway's gRPC invocation port (function calls); workers connect to its worker "
        f"port (--worker-port, here {gateway.worker_port}, default 10082)"
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.worker_port}") as channel:
        stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Register(pb.RegisterRequest(credential="x"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # the worker service itself


async def test_a_worker_pointed_at_the_invocation_port_says_so_and_exits(gateway: Gateway) -> None:
    with socket.socket() as container:  # readiness without a health URL: the port accepts
        container.bind(("127.0.0.1", 0))
        container.listen()
        argv = [
            sys.executable, "-m", "invoker.worker", "--gateway", f"127.0.0.1:{gateway.grpc_port}",
            "--function-id", str(uuid.uuid4()),
            "--inference-url", f"http://127.0.0.1:{container.getsockname()[1]}",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CFGATE_WORKER_TOKEN": "some-token"},
            cwd=ROOT,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3, err
    assert b"registration refused: FAILED_PRECONDITION: this is the gateway's gRPC invocation port" in err


async def test_a_task_worker_pointed_at_the_invocation_port_says_so_and_exits(gateway: Gateway) -> None:
    argv = [
        sys.executable, "-m", "invoker.worker", "--tasks", "--gateway", f"127.0.0.1:{gateway.grpc_port}",
        "--gpu", "H100", "--instance-type", "NCP.GPU.H100_1x",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CFGATE_WORKER_TOKEN": "some-token"},
        cwd=ROOT,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3, err
    assert b"FAILED_PRECONDITION: this is the gateway's gRPC invocation port" in err
