"""The grpc.aio server of the gRPC invocation port: every method goes to the proxy, as bytes.

One generic handler answers any ``/service/method`` as a stream-stream call with identity
serializers: the proxy needs no protobuf of the function, and the HTTP/2 framing of all four
call kinds is the same. A cfgate worker pointed here by mistake (this port was once the worker
port) gets FAILED_PRECONDITION naming the worker port, and stops.
"""

from __future__ import annotations

import grpc

from gateway.grpc_invocation.proxy import GrpcInvocations
from invoker.limits import WORKER_MESSAGE_BYTES

WORKER_SERVICE_PREFIX = "/cfgate.worker.v1.WorkerService/"


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: GrpcInvocations, worker_port: int) -> None:
        self._proxy = proxy
        self._worker_port = worker_port

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        method: str = handler_call_details.method
        if method.startswith(WORKER_SERVICE_PREFIX):
            return grpc.stream_stream_rpc_method_handler(self._wrong_port)
        return grpc.stream_stream_rpc_method_handler(self._proxy.handler(method))

    async def _wrong_port(self, _requests: object, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this is the gateway's gRPC invocation port (function calls); workers connect to its worker "
            f"port (--worker-port, here {self._worker_port}, default 10082)",
        )


class GrpcInvocationEndpoint:
    def __init__(self, proxy: GrpcInvocations, host: str, port: int, *, worker_port: int) -> None:
        self.proxy = proxy
        self._address = f"{host}:{port}"
        self._worker_port = worker_port
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", WORKER_MESSAGE_BYTES),
                ("grpc.max_send_message_length", WORKER_MESSAGE_BYTES),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ]
        )
        server.add_generic_rpc_handlers((_Handler(self.proxy, self._worker_port),))
        self.port = server.add_insecure_port(self._address)
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self.proxy.settle()
