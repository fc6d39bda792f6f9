"""A scripted worker speaking the real worker protocol over real gRPC, for gateway-side tests.

Each invocation is answered by a test-provided coroutine, so tests can hold answers, stream
chunks, report progress or vanish mid-request. (The real worker agent has its own tests.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import grpc

from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc

Reply = Callable[["ScriptedWorker", pb.Invocation], Coroutine[Any, Any, None]]


class ScriptedWorker:
    def __init__(self, target: str, token: str, function_id: str, reply: Reply, concurrency: int = 4) -> None:
        self.target = target
        self.token = token
        self.function_id = function_id
        self.reply = reply
        self.concurrency = concurrency
        self.received: list[pb.Invocation] = []
        self.cancelled: list[str] = []
        self._out: asyncio.Queue[pb.WorkerMessage | None] = asyncio.Queue()
        self._channel: grpc.aio.Channel | None = None
        self._call: object | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()

    async def start(self) -> pb.RegisterResponse:
        self._channel = grpc.aio.insecure_channel(self.target)
        stub = worker_pb2_grpc.WorkerServiceStub(self._channel)  # type: ignore[no-untyped-call]
        response: pb.RegisterResponse = await stub.Register(
            pb.RegisterRequest(credential=self.token, function_id=self.function_id, max_concurrency=self.concurrency)
        )
        self._out.put_nowait(pb.WorkerMessage(credits=self.concurrency))
        call = stub.Work(self._outgoing(), metadata=(("cfgate-session-id", response.session_id),))
        self._call = call
        self._runner = asyncio.create_task(self._run(call))
        self.registered.set()
        return response

    async def _outgoing(self) -> AsyncIterator[pb.WorkerMessage]:
        while (message := await self._out.get()) is not None:
            yield message

    async def _run(self, call: AsyncIterator[pb.GatewayMessage]) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for message in call:
                if message.ping:
                    self.send(pb.WorkerMessage(heartbeat=True))
                for cancel in message.cancels:
                    self.cancelled.append(cancel.request_id)
                for invocation in message.invocations:
                    self.received.append(invocation)
                    task = asyncio.create_task(self.reply(self, invocation))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def send(self, message: pb.WorkerMessage) -> None:
        self._out.put_nowait(message)

    def answer(self, request_id: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        hdrs = [pb.Header(key=k, value=v) for k, v in (headers or {"content-type": "application/json"}).items()]
        self.send(
            pb.WorkerMessage(
                credits=1,
                starts=[pb.ResponseStart(request_id=request_id, status=status, headers=hdrs)],
                chunks=[pb.ResponseChunk(request_id=request_id, data=body)],
                ends=[pb.ResponseEnd(request_id=request_id)],
            )
        )

    async def crash(self) -> None:
        """Vanish like a killed process: the stream breaks, nothing is answered."""
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            self._runner.cancel()
        if self._channel is not None:
            await self._channel.close(grace=None)

    async def stop(self) -> None:
        self._out.put_nowait(None)
        await self.crash()
