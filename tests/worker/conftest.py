"""Fixtures for the worker agent: a real echo container, a real grpc.aio gateway double, the agent.

``GatewayDouble`` is a small WorkerService written for these tests: ``Register`` checks the
credential (request field and ``authorization`` metadata) and opens a session; ``Work`` checks the
``cfgate-session-id`` metadata, records every WorkerMessage as it arrives, and sends whatever the
test puts on the session's queue. It ends a stream when the worker half-closes it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import uvloop

from invoker.worker.agent import WorkerAgent
from invoker.worker.config import WorkerConfig
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc as pb_grpc
from tests.support.echo_server import EchoServer

TOKEN = "test-worker-token"
FUNCTION_ID = "9b3b8a4e-7f7e-4b59-9b40-1f7d8e3c2a10"
VERSION_ID = "0c5e7c1a-3d2b-4e6f-8a9b-5c4d3e2f1a00"
NCA_ID = "nca-owner"
METADATA = {
    "NVCF-NSPECTID": "NSPECT-TEST",
    "backend": "test-backend",
    "instance_type": "gpu.test",
    "region": "test-region-1",
    "env": "test",
    "invocation-region": "inv-region-1",
}
WAIT = 15.0


@dataclass
class Result:
    """What the gateway double received for one request id."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    kind: int = pb.ResultKind.DIRECT
    body: bytes = b""
    progress: list[tuple[int, bytes]] = field(default_factory=list)
    ended: bool = False
    error: str = ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class DoubleSession:
    def __init__(self, session_id: str, metadata: dict[str, str]) -> None:
        self.session_id = session_id
        self.metadata = metadata
        self.messages: list[pb.WorkerMessage] = []
        self.outbound: asyncio.Queue[pb.GatewayMessage | None] = asyncio.Queue()
        self.worker_closed = False
        self._changed = asyncio.Event()

    def received(self, message: pb.WorkerMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    def closed(self) -> None:
        self.worker_closed = True
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def send(self, **fields: Any) -> None:
        self.outbound.put_nowait(pb.GatewayMessage(**fields))

    def invoke(self, *invocations: pb.Invocation) -> None:
        self.send(invocations=list(invocations))

    def end_stream(self) -> None:
        self.outbound.put_nowait(None)

    @property
    def credits(self) -> int:
        return sum(message.credits for message in self.messages)

    def result(self, request_id: str) -> Result:
        result = Result()
        for message in self.messages:
            for start in message.starts:
                if start.request_id == request_id:
                    result.status = start.status
                    result.headers = [(h.key, h.value) for h in start.headers]
                    result.kind = start.kind
            result.body += b"".join(chunk.data for chunk in message.chunks if chunk.request_id == request_id)
            result.progress += [(p.percent, p.partial_response) for p in message.progress if p.request_id == request_id]
            for end in message.ends:
                if end.request_id == request_id:
                    result.ended = True
                    result.error = end.error
        return result

    def ended(self, request_id: str) -> bool:
        return any(end.request_id == request_id for message in self.messages for end in message.ends)

    async def wait_end(self, request_id: str, timeout: float = WAIT) -> Result:
        await self.wait_for(lambda: self.ended(request_id), timeout)
        return self.result(request_id)


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}


class _Servicer(pb_grpc.WorkerServiceServicer):
    def __init__(self, double: GatewayDouble) -> None:
        self.double = double

    async def Register(self, request: pb.RegisterRequest, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        double = self.double
        metadata = _metadata(context)
        double.registrations.append((request, metadata))
        if request.credential != double.token or metadata.get("authorization") != f"Bearer {double.token}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credential")
        session_id = f"session-{next(double.counter)}"
        double.session_ids.add(session_id)
        return pb.RegisterResponse(
            session_id=session_id,
            function_id=request.function_id,
            version_id=request.version_id or VERSION_ID,
            function_name="echo-function",
            nca_id=NCA_ID,
            inference_url="/echo",
            inference_port=0,
            heartbeat_interval_ms=double.heartbeat_interval_ms,
            max_direct_response_bytes=double.max_direct_response_bytes,
            metadata={**METADATA, **double.announced()},
        )

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkerMessage], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.GatewayMessage]:
        double = self.double
        metadata = _metadata(context)
        session_id = metadata.get("cfgate-session-id", "")
        if session_id not in double.session_ids:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "unknown session")
        session = DoubleSession(session_id, metadata)
        double.sessions.append(session)
        double.changed.set()

        async def pump() -> None:
            async for message in request_iterator:
                session.received(message)
            session.closed()
            session.outbound.put_nowait(None)

        reader = asyncio.ensure_future(pump())
        try:
            while True:
                item = await session.outbound.get()
                if item is None:
                    return
                yield item
        finally:
            reader.cancel()


class GatewayDouble:
    """A real grpc.aio WorkerService on 127.0.0.1, restartable on the same port."""

    def __init__(self) -> None:
        self.token = TOKEN
        self.port = 0
        self.heartbeat_interval_ms = 5000
        self.max_direct_response_bytes = 5 * 1024 * 1024
        self.gateway_url = ""  # announced as metadata["gatewayUrl"] when set
        self.gateway_host = ""  # announced as metadata["gatewayHost"] when set
        self.registrations: list[tuple[pb.RegisterRequest, dict[str, str]]] = []
        self.session_ids: set[str] = set()
        self.sessions: list[DoubleSession] = []
        self.counter = itertools.count(1)
        self.changed = asyncio.Event()
        self._server: grpc.aio.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def announced(self) -> dict[str, str]:
        """The asset-download metadata this double's Register answers carry (none unless set)."""
        pairs = {"gatewayUrl": self.gateway_url, "gatewayHost": self.gateway_host}
        return {key: value for key, value in pairs.items() if value}

    async def start(self) -> None:
        server = grpc.aio.server()
        pb_grpc.add_WorkerServiceServicer_to_server(_Servicer(self), server)  # type: ignore[no-untyped-call]
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    async def session(self, index: int = 0, timeout: float = WAIT) -> DoubleSession:
        """The index-th Work session (waiting for it to open)."""
        async with asyncio.timeout(timeout):
            while len(self.sessions) <= index:
                self.changed.clear()
                await self.changed.wait()
        return self.sessions[index]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async worker test runs on the default loop and on uvloop (what the CLI uses)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def gateway_double() -> AsyncIterator[GatewayDouble]:
    double = GatewayDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


@dataclass
class RunningAgent:
    agent: WorkerAgent
    task: asyncio.Task[int]
    config: WorkerConfig

    async def stop(self, timeout: float = WAIT) -> int:
        self.agent.request_stop()
        async with asyncio.timeout(timeout):
            return await self.task


StartAgent = Callable[..., Awaitable[RunningAgent]]


@pytest.fixture
async def start_agent(gateway_double: GatewayDouble, echo: EchoServer, tmp_path: Path) -> AsyncIterator[StartAgent]:
    running: list[RunningAgent] = []

    async def start(**overrides: Any) -> RunningAgent:
        values: dict[str, Any] = {
            "gateway": gateway_double.target,
            "token": TOKEN,
            "function_id": FUNCTION_ID,
            "inference_url": f"{echo.url}/echo",
            "max_concurrency": 4,
            "work_dir": tmp_path / "work",
            "instance_id": "worker-under-test",
            "grace_period": 10.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.5,
        }
        values.update(overrides)
        config = WorkerConfig(**values)
        agent = WorkerAgent(config)
        task = asyncio.ensure_future(agent.run())
        handle = RunningAgent(agent, task, config)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            handle.agent.request_stop()
            handle.agent.request_stop()
            try:
                async with asyncio.timeout(WAIT):
                    await handle.task
            except TimeoutError:
                handle.task.cancel()


def invocation(request_id: str, path: str = "/echo", **fields: Any) -> pb.Invocation:
    """An Invocation with defaults for the fields the tests do not care about."""
    values: dict[str, Any] = {"request_id": request_id, "method": "POST", "path": path, "subject": "client-sub"}
    values.update(fields)
    headers = values.pop("headers", [])
    return pb.Invocation(headers=[pb.Header(key=k, value=v) for k, v in headers], **values)
