"""The grpc.aio server of the gRPC invocation port (NVCF's 10081).

Function calls are not relayed yet: every method answers UNIMPLEMENTED. A cfgate worker pointed
here by mistake (this port was once the worker port) gets FAILED_PRECONDITION naming the worker
port, and stops.
"""

from __future__ import annotations

import grpc

WORKER_SERVICE_PREFIX = "/cfgate.worker.v1.WorkerService/"


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, worker_port: int) -> None:
        self._worker_port = worker_port

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        method: str = handler_call_details.method
        if method.startswith(WORKER_SERVICE_PREFIX):
            return grpc.stream_stream_rpc_method_handler(self._wrong_port)
        return grpc.stream_stream_rpc_method_handler(self._unimplemented)

    async def _wrong_port(self, _requests: object, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "this is the gateway's gRPC invocation port (function calls); workers connect to its worker "
            f"port (--worker-port, here {self._worker_port}, default 10082)",
        )

    async def _unimplemented(self, _requests: object, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "gRPC invocation is not served yet")


class GrpcInvocationEndpoint:
    def __init__(self, host: str, port: int, *, worker_port: int) -> None:
        self._address = f"{host}:{port}"
        self._worker_port = worker_port
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_Handler(self._worker_port),))
        self.port = server.add_insecure_port(self._address)
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
