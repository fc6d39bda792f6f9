"""The gateway side of the ``Tasks`` stream: hello → authorization → welcome → assignments.

The invoker's ``WorkerService.Tasks`` hands the stream here (the invoker never imports the
gateway). A stream that sends nothing for three heartbeat intervals is ended, which errors the
tasks its worker was running; a quiet one gets a ``ping`` after one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from gateway.auth.authenticator import Authenticator
from gateway.services.tasks.scheduler import TaskScheduler, TaskWorkerSession
from gateway.services.tasks.workers import TaskWorkerGrant, authorize_task_worker
from invoker.errors import WorkerRejected
from protos.cfgate.worker.v1 import worker_pb2 as pb

log = logging.getLogger("gateway.tasks")

Authorize = Callable[[Authenticator, str, pb.TaskHello], Awaitable[TaskWorkerGrant]]
Context = grpc.aio.ServicerContext[object, object]


def _bearer(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


class TaskBroker:
    def __init__(
        self,
        scheduler: TaskScheduler,
        authenticator: Authenticator,
        *,
        heartbeat_interval_ms: int = 2000,
        authorize: Authorize = authorize_task_worker,
    ) -> None:
        self.scheduler = scheduler
        self._authenticator = authenticator
        self._authorize = authorize
        self.heartbeat_interval_ms = heartbeat_interval_ms

    async def __call__(
        self, messages: AsyncIterator[pb.TaskWorkerMessage], context: Context
    ) -> AsyncIterator[pb.TaskGatewayMessage]:
        iterator = messages.__aiter__()
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            return
        if not first.HasField("hello"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry hello")
        credential = first.hello.credential or _bearer(context)
        if not credential:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a credential is required")
        try:
            grant = await self._authorize(self._authenticator, credential, first.hello)
        except WorkerRejected as exc:
            code = grpc.StatusCode.UNAUTHENTICATED if exc.unauthenticated else grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, str(exc))
        session = TaskWorkerSession(first.hello, grant)
        interval = self.heartbeat_interval_ms / 1000
        yield pb.TaskGatewayMessage(
            welcome=pb.TaskWelcome(session_id=session.session_id, heartbeat_interval_ms=self.heartbeat_interval_ms)
        )
        self.scheduler.attach(session)
        reader = asyncio.create_task(self._read(session, iterator))
        reason = "stream closed"
        try:
            while not reader.done():
                try:
                    async with asyncio.timeout(interval):
                        message = await session.outbound.get()
                except TimeoutError:
                    if time.monotonic() - session.last_seen > 3 * interval:
                        reason = "heartbeat lost"
                        break
                    message = pb.TaskGatewayMessage(ping=True)
                if session.ended is not None:
                    reason = session.ended
                    break
                yield message
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            try:
                # Shielded: a stream cancelled at shutdown must not abandon the store write midway
                # (a cancelled asyncpg query leaks its pooled connection).
                await asyncio.shield(self.scheduler.detach(session, reason))
            except Exception:
                # The store may be closing (gateway shutdown): the lost-heartbeat backstop errors the
                # session's tasks later, on whichever node runs next.
                log.exception("task worker %s: could not record its departure", session.instance_id)

    async def _read(self, session: TaskWorkerSession, messages: AsyncIterator[pb.TaskWorkerMessage]) -> None:
        try:
            async for message in messages:
                await self.scheduler.on_message(session, message)
        except grpc.aio.AioRpcError:
            pass
        except Exception:
            log.exception("task worker %s: bad message", session.instance_id)
