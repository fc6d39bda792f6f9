"""A real gRPC function container for the tests:
``python -m tests.grpc_invocation.container PORT DIR [not-serving]``.

Service ``test.Echo`` on raw bytes (the proxy must not need its protobuf), with the standard
health service (answering NOT_SERVING with ``not-serving``). ``Slow`` writes ``<DIR>/cancelled``
when its caller cancels it. ``Drip`` reads a client stream slowly, ``Binary`` answers with binary
metadata both ways, ``Rich`` fails with rich error details (``grpc-status-details-bin``, as
``grpc_status`` servers send them).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

Context = grpc.aio.ServicerContext[bytes, bytes]


def build_handler(state: Path) -> grpc.GenericRpcHandler:  # noqa: C901 - one small method each
    async def unary(request: bytes, context: Context) -> bytes:
        await context.send_initial_metadata((("x-container", "initial"),))
        context.set_trailing_metadata((("x-container-trailer", "trailing"),))
        return b"echo:" + request

    async def metadata(request: bytes, context: Context) -> bytes:
        seen = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        return json.dumps(seen).encode()

    async def server_stream(request: bytes, context: Context) -> AsyncIterator[bytes]:
        for i in range(int(request)):
            yield b"item-%d" % i

    async def client_stream(requests: AsyncIterator[bytes], context: Context) -> bytes:
        return b"+".join([r async for r in requests])

    async def bidi(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        async for request in requests:
            yield b"re:" + request

    async def slow(request: bytes, context: Context) -> bytes:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            (state / "cancelled").write_text(request.decode())
            raise
        return b"late"

    async def fail(request: bytes, context: Context) -> bytes:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the container refuses: " + request.decode())
        return b""

    async def drip(requests: AsyncIterator[bytes], context: Context) -> bytes:
        received = 0
        async for request in requests:  # a slow reader: 20 ms a message
            received += len(request)
            await asyncio.sleep(0.02)
        return b"%d" % received

    async def binary(request: bytes, context: Context) -> bytes:
        seen = dict(context.invocation_metadata() or ())
        await context.send_initial_metadata((("x-initial-bin", b"\x00\xffinitial"),))
        context.set_trailing_metadata((("x-trailer-bin", b"\x00\xfe" + request),))
        value = seen.get("x-client-bin", b"missing")
        return value if isinstance(value, bytes) else b"text:" + value.encode()

    async def rich(request: bytes, context: Context) -> bytes:
        violation = error_details_pb2.BadRequest.FieldViolation(field="name", description=request.decode())
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status = rpc_status.to_status(
            status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="the name is bad", details=[detail])
        )
        extra = (("x-trailer-bin", b"\x00\x01rich"),)
        await context.abort(status.code, status.details, (*status.trailing_metadata, *extra))
        return b""

    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Metadata": grpc.unary_unary_rpc_method_handler(metadata),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
            "Slow": grpc.unary_unary_rpc_method_handler(slow),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Drip": grpc.stream_unary_rpc_method_handler(drip),
            "Binary": grpc.unary_unary_rpc_method_handler(binary),
            "Rich": grpc.unary_unary_rpc_method_handler(rich),
        },
    )


async def main(port: int, state: Path, serving: bool) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((build_handler(state),))
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await servicer.set("", status)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:] != ["not-serving"]))
