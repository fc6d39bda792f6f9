"""Calling the container's own gRPC server for a gRPC invocation (frames unchanged).

The worker knows nothing of the function's protobuf: every method is called as a
stream-stream call with identity serializers (the HTTP/2 framing of all four call kinds is the
same), the client's request messages are written as they arrive, the container's messages are
relayed as they come, in gRPC framing. Before the first call, and again after the container
could not be reached, the standard ``grpc.health.v1`` service must answer SERVING (NVCF requires
it of gRPC functions).

Outcome, always: a ResponseStart (status 200, the container's initial metadata), the messages
as chunks, then GrpcTrailers with the container's status, details and trailing metadata. A
container that is down or not serving ends as UNAVAILABLE; a cancel or the deadline cancels the
container call (the container sees CANCELLED).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from invoker.grpc_frames import FRAME_HEAD, FrameReader, frame
from invoker.grpc_metadata import from_headers, to_headers
from invoker.worker.outbox import Outbox
from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = ["GrpcContainer"]

log = logging.getLogger("invoker.worker.grpc")

_HEALTH_TIMEOUT = 5.0
# Metadata that belongs to the transport or to the gateway, never passed to the container.
_DROPPED = frozenset({"te", "content-type", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"})
MAX_MESSAGE_BYTES = 64 << 20
_METHODS_KEPT = 256


class GrpcContainer:
    """One channel to the container's gRPC server, shared by the session's gRPC invocations."""

    def __init__(self, host: str, port: int) -> None:
        self.target = f"{host}:{port}"
        self._channel: grpc.aio.Channel | None = None
        self._healthy = False
        self._requests: dict[str, asyncio.Queue[bytes | None]] = {}
        self._methods: dict[tuple[str, bool], Any] = {}

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ],
            )
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._methods.clear()

    def _method(self, path: str, *, unary: bool) -> Any:
        """The channel's multi-callable for ``path`` (kept: building one per call costs)."""
        key = (path, unary)
        method = self._methods.get(key)
        if method is None:
            if len(self._methods) >= _METHODS_KEPT:
                self._methods.clear()  # clients name the methods: keep a bounded few
            channel = self.channel()
            method = channel.unary_stream(path) if unary else channel.stream_stream(path)
            self._methods[key] = method
        return method

    async def _serving(self) -> str | None:
        """None when the container's health service answers SERVING, else why not."""
        if self._healthy:
            return None
        stub = health_pb2_grpc.HealthStub(self.channel())
        try:
            answer = await stub.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=_HEALTH_TIMEOUT
            )
        except grpc.aio.AioRpcError as exc:
            return f"the container's gRPC health check failed: {exc.code().name} {exc.details()}"
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            return f"the container's gRPC health service answers {status}"
        self._healthy = True
        return None

    def more_requests(self, frames: pb.GrpcRequestFrames) -> None:
        """Request messages of a streaming invocation, from the gateway (in order)."""
        # The invocation may not have reached its call yet (same message): the queue waits for it.
        queue = self._requests.setdefault(frames.request_id, asyncio.Queue())
        reader = FrameReader()
        for message in reader.feed(frames.data):
            queue.put_nowait(message)
        if frames.half_close:
            queue.put_nowait(None)

    async def call(self, invocation: pb.Invocation, headers: list[tuple[str, str]], outbox: Outbox) -> str:
        """Serve one gRPC invocation; returns the ResponseEnd error ("" when answered)."""
        request_id = invocation.request_id
        problem = await self._serving()
        if problem is not None:
            self._requests.pop(request_id, None)
            log.warning("invocation %s: %s", request_id, problem)
            outbox.start(request_id, 200, [])
            outbox.trailers(request_id, grpc.StatusCode.UNAVAILABLE.value[0], problem, [])
            return ""
        first = list(FrameReader().feed(invocation.body))
        metadata = tuple(from_headers((k.lower(), v) for k, v in headers if k.lower() not in _DROPPED and k[:1] != ":"))
        timeout = invocation.deadline_ms / 1000 - time.time() if invocation.deadline_ms else None
        call: grpc.aio.UnaryStreamCall[bytes, bytes] | grpc.aio.StreamStreamCall[bytes, bytes]
        if not invocation.grpc.streaming_requests and len(first) == 1:
            # One message, half-closed (unary, server streaming): sent with the half-close in one
            # operation, no request-iterator task (a third of the worker's CPU per unary call).
            call = self._method(invocation.path, unary=True)(first[0], metadata=metadata, timeout=timeout)
        else:
            queue = None
            if invocation.grpc.streaming_requests:
                queue = self._requests.setdefault(request_id, asyncio.Queue())
            requests = _requests(first, queue, request_id, outbox)
            call = self._method(invocation.path, unary=False)(requests, metadata=metadata, timeout=timeout)
        started = False
        try:
            initial = await call.initial_metadata()
            outbox.start(request_id, 200, to_headers(initial))
            started = True
            async for message in call:
                assert isinstance(message, bytes)
                outbox.chunk(request_id, frame(message))
                if outbox.congested:
                    await outbox.wait_space()
            code = await call.code()
            trailing = await call.trailing_metadata()
            outbox.trailers(request_id, code.value[0], await call.details() or "", to_headers(trailing))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAVAILABLE:
                self._healthy = False  # look again before the next call
            if not started:
                outbox.start(request_id, 200, to_headers(exc.initial_metadata()))
            outbox.trailers(request_id, exc.code().value[0], exc.details() or "", to_headers(exc.trailing_metadata()))
        except asyncio.CancelledError:
            call.cancel()  # the container sees CANCELLED
            raise
        finally:
            self._requests.pop(request_id, None)
        return ""


async def _requests(
    first: list[bytes], more: asyncio.Queue[bytes | None] | None, request_id: str, outbox: Outbox
) -> AsyncIterator[bytes]:
    for message in first:
        yield message
    if more is None:
        return
    while (item := await more.get()) is not None:
        yield item
        # grpc.aio asks for the next message once this one is written (flow control permitting):
        # the gateway may send this much more.
        outbox.requests_read(request_id, len(item) + FRAME_HEAD)
