"""The gRPC worker endpoint (grpc.aio on the gateway's own event loop).

``Register`` checks the worker's credential through the gateway-provided ``WorkerAuthorizer``
(the invoker never imports the gateway) and opens a session; ``Work`` is the session's one
bidirectional stream. A watchdog ends sessions whose heartbeats stopped, which sends their
unanswered invocations back to the queue. The standard ``grpc.health.v1`` service is served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from invoker.dispatch import Dispatcher
from invoker.errors import WorkerRejected
from invoker.sessions import WorkerGrant, WorkerSession
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc

log = logging.getLogger("invoker.server")

SESSION_HEADER = "cfgate-session-id"
SERVICE_NAME = "cfgate.worker.v1.WorkerService"
REGISTRATION_TTL = 60.0  # seconds a Register stays valid before its Work stream opens
MAX_MESSAGE_BYTES = 80 << 20

# (credential, register request) → what the worker may serve; raises WorkerRejected.
WorkerAuthorizer = Callable[[str, pb.RegisterRequest], Awaitable[WorkerGrant]]
# version id → the version's secrets as a JSON object (what the worker writes for its container).
SecretsSource = Callable[[str], Awaitable[bytes]]
# Serves one task worker's Tasks stream (the gateway's task broker).
TaskStreams = Callable[
    [AsyncIterator[pb.TaskWorkerMessage], "grpc.aio.ServicerContext[object, object]"],
    AsyncIterator[pb.TaskGatewayMessage],
]


@dataclass(slots=True)
class _Registration:
    grant: WorkerGrant
    instance_id: str
    max_concurrency: int
    created: float
    secrets_json: bytes = b"{}"


def _bearer(context: grpc.aio.ServicerContext[object, object]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


class WorkerService(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self,
        dispatcher: Dispatcher,
        authorize: WorkerAuthorizer,
        *,
        heartbeat_interval_ms: int = 2000,
        max_direct_response_bytes: int = 5 * 1024 * 1024,
        tasks: TaskStreams | None = None,
        secrets: SecretsSource | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self._secrets = secrets
        self._tasks = tasks
        self._authorize = authorize
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.max_direct_response_bytes = max_direct_response_bytes
        self._registrations: dict[str, _Registration] = {}
        self._streams: dict[str, asyncio.Task[object]] = {}
        self._departures: set[asyncio.Future[None]] = set()  # detaches that outlive their stream

    async def Register(
        self, request: pb.RegisterRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.RegisterResponse:
        credential = request.credential or _bearer(context)
        if not credential:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a credential is required")
        try:
            grant = await self._authorize(credential, request)
        except WorkerRejected as exc:
            code = grpc.StatusCode.UNAUTHENTICATED if exc.unauthenticated else grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, str(exc))
        self._expire_registrations()
        secrets_json = await self._secrets(grant.version_id) if self._secrets is not None else b"{}"
        session_id = str(uuid.uuid4())
        concurrency = grant.concurrency(request.max_concurrency)
        self._registrations[session_id] = _Registration(
            grant, request.instance_id or str(uuid.uuid4()), concurrency, time.monotonic(), secrets_json
        )
        return pb.RegisterResponse(
            session_id=session_id,
            function_id=grant.function_id,
            version_id=grant.version_id,
            function_name=grant.function_name,
            nca_id=grant.nca_id,
            inference_url=grant.inference_url,
            inference_port=grant.inference_port,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_direct_response_bytes=self.max_direct_response_bytes,
            metadata=grant.metadata,
            max_concurrency=concurrency,
            secrets=pb.FunctionSecrets(secrets_json=secrets_json),
        )

    async def Work(
        self, request_iterator: AsyncIterator[pb.WorkerMessage], context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.GatewayMessage]:
        session_id = dict(context.invocation_metadata() or ()).get(SESSION_HEADER, "")
        registration = self._registrations.pop(str(session_id), None)
        if registration is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or expired session: call Register first")
            return
        session = WorkerSession(
            str(session_id), registration.instance_id, registration.grant, registration.max_concurrency
        )
        await self.dispatcher.attach(session)
        if self._secrets is not None:
            # Secrets changed between Register and now were pushed to no session: send them.
            current = await self._secrets(session.version_id)
            if current != registration.secrets_json and not session.secrets_pending:
                session.send_secrets(current)
        task = asyncio.current_task()
        if task is not None:
            self._streams[session.session_id] = task
        reader = asyncio.create_task(self._read(session, request_iterator))
        reason = "stream closed"
        try:
            while (message := await session.next_message()) is not None:
                yield message
        except asyncio.CancelledError:
            reason = "heartbeat lost" if not reader.done() else "stream broken"
            raise
        finally:
            self._streams.pop(session.session_id, None)
            reader.cancel()
            # grpc.aio cancels this handler when the worker goes (kill -9): a detach interrupted
            # half-way would leave the rest of its invocations in flight for good (the session
            # is already gone, so nothing detaches it again). It runs to the end on its own task.
            departure = asyncio.ensure_future(self.dispatcher.detach(session, reason))
            self._departures.add(departure)
            departure.add_done_callback(self._departures.discard)
            await asyncio.shield(departure)

    async def Tasks(
        self, request_iterator: AsyncIterator[pb.TaskWorkerMessage], context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[pb.TaskGatewayMessage]:
        if self._tasks is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this gateway runs no tasks")
            return
        async for message in self._tasks(request_iterator, context):
            yield message

    async def settle(self) -> None:
        """Wait for the detaches still running after their streams ended (at shutdown)."""
        if self._departures:
            await asyncio.gather(*self._departures, return_exceptions=True)

    async def _read(self, session: WorkerSession, messages: AsyncIterator[pb.WorkerMessage]) -> None:
        try:
            on_message = self.dispatcher.on_worker_message
            async for message in messages:
                await on_message(session, message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("worker %s: bad message", session.instance_id)
        finally:
            session.close()

    def push_secrets(self, version_id: str, document: bytes) -> int:
        """Send a version's new secrets to its workers connected here; returns how many."""
        sessions = self.dispatcher.sessions_where(lambda session: session.version_id == version_id)
        for session in sessions:
            session.send_secrets(document)
        return len(sessions)

    def connected_versions(self) -> set[str]:
        return {session.version_id for session in self.dispatcher.all_sessions()}

    async def disconnect(self, match: Callable[[WorkerGrant], bool], reason: str) -> int:
        """End every session (and pending registration) whose grant ``match``es; returns how many.

        The dispatcher detaches each session first, so its unanswered invocations are redelivered
        (or errored, per its rules) at once; then the stream is cancelled so nothing more reaches
        the worker, which sees the stream end and must register again.
        """
        for sid in [s for s, r in self._registrations.items() if match(r.grant)]:
            del self._registrations[sid]
        sessions = self.dispatcher.sessions_where(lambda session: match(session.grant))
        for session in sessions:
            log.warning("worker %s disconnected: %s", session.instance_id, reason)
            await self.dispatcher.detach(session, reason)
            stream = self._streams.get(session.session_id)
            if stream is not None:
                stream.cancel()
        return len(sessions)

    def _expire_registrations(self) -> None:
        now = time.monotonic()
        for sid in [s for s, r in self._registrations.items() if now - r.created > REGISTRATION_TTL]:
            del self._registrations[sid]

    async def watchdog(self) -> None:
        """End sessions that sent nothing for three heartbeat intervals."""
        interval = self.heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval / 2)
            deadline = time.monotonic() - 3 * interval
            for session in self.dispatcher.all_sessions():
                if session.last_seen < deadline:
                    stream = self._streams.get(session.session_id)
                    log.warning("worker %s missed its heartbeats: ending its session", session.instance_id)
                    if stream is not None:
                        stream.cancel()
                    else:
                        await self.dispatcher.detach(session, "heartbeat lost")
                elif session.last_seen < time.monotonic() - interval:
                    session.ping()


class WorkerEndpoint:
    """The grpc.aio server: the worker service, the health service and the watchdog."""

    def __init__(self, service: WorkerService, host: str, port: int) -> None:
        self.service = service
        self._address = f"{host}:{port}"
        self._server: grpc.aio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        self.port = 0

    async def start(self) -> int:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_timeout_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ]
        )
        worker_pb2_grpc.add_WorkerServiceServicer_to_server(self.service, server)  # type: ignore[no-untyped-call]
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.port = server.add_insecure_port(self._address)
        await server.start()
        for name in ("", SERVICE_NAME):
            await _set_serving(self._health, name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        self._watchdog = asyncio.create_task(self.service.watchdog())
        return self.port

    async def stop(self, grace: float) -> None:
        for name in ("", SERVICE_NAME):
            await _set_serving(self._health, name, health_pb2.HealthCheckResponse.NOT_SERVING)
        for session in self.service.dispatcher.all_sessions():
            session.drain()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        await self.service.settle()


async def _set_serving(servicer: object, name: str, status: int) -> None:
    result = servicer.set(name, status)  # type: ignore[attr-defined]
    if asyncio.iscoroutine(result):
        await result
