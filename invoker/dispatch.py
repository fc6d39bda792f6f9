"""Matching queued invocations to worker credits, and everything that happens to them after.

Per function version: a queue (the ``InvocationQueue`` protocol) and the worker sessions serving
it. A *pump* runs whenever there may be work for a free credit; it takes from the queue and puts
invocations in a session's outbox. Answers arriving from a worker are applied to the invocation
(``invoker.invocations``); a lost worker's unanswered invocations go back to the head of the queue
(``attempt + 1``) until ``max_attempts``, which ends them ``errored``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from invoker.errors import QueueFull
from invoker.instances import InstanceRegistry, LiveInstance
from invoker.invocations import Answer, Invocation, InvocationTable, ResultKind
from invoker.lifecycle import Event, State
from invoker.queues.base import InvocationQueue
from invoker.sessions import WorkerSession
from protos.cfgate.worker.v1 import worker_pb2 as pb

log = logging.getLogger("invoker.dispatch")

WAITING = (State.QUEUED, State.REQUEUED)


class Dispatcher:
    def __init__(
        self,
        queue: InvocationQueue,
        table: InvocationTable,
        instances: InstanceRegistry,
        *,
        max_attempts: int = 3,
        queue_lifetime: float = 3600.0,
        max_queue_depth: int = 10_000,
    ) -> None:
        self.queue = queue
        self.table = table
        self.instances = instances
        self.max_attempts = max_attempts
        self.queue_lifetime = queue_lifetime
        self.max_queue_depth = max_queue_depth
        self._sessions: dict[str, WorkerSession] = {}
        self._by_version: dict[str, list[WorkerSession]] = {}
        self._turn: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._pumping: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- invocations ----------------------------------------------------------------------

    async def submit(self, invocation: Invocation) -> None:
        request = invocation.request
        if await self.queue.depth(request.version_id) >= self.max_queue_depth:
            raise QueueFull(f"queue of version {request.version_id} is full")
        self.table.add(invocation)
        await self.queue.enqueue(request.version_id, request.function_id, request.request_id, request)
        loop = asyncio.get_running_loop()
        invocation.timer = loop.call_later(self.queue_lifetime, self._expire_soon, invocation)
        self.kick(request.version_id)

    async def cancel(self, invocation: Invocation, reason: str) -> None:
        """The client gave up (or the function was undeployed): stop it wherever it is."""
        if invocation.final:
            return
        session = invocation.session
        if isinstance(session, WorkerSession) and invocation.request_id in session.inflight:
            session.cancel(invocation.request_id, reason)
        await self.queue.cancel(invocation.request_id)
        invocation.error = reason
        invocation.apply(Event.CANCEL)

    def _expire_soon(self, invocation: Invocation) -> None:
        self._spawn(self._expire(invocation))

    async def _expire(self, invocation: Invocation) -> None:
        invocation.timer = None
        if invocation.state in WAITING:
            await self.queue.cancel(invocation.request_id)
            invocation.error = "no worker took the invocation within its queue lifetime"
            invocation.apply(Event.EXPIRE)

    # --- the pump -------------------------------------------------------------------------

    def kick(self, version_id: str) -> None:
        self._dirty.add(version_id)
        if version_id not in self._pumping:
            self._pumping.add(version_id)
            self._spawn(self._pump(version_id))

    async def _pump(self, version_id: str) -> None:
        try:
            while version_id in self._dirty:
                self._dirty.discard(version_id)
                while (session := self._pick(version_id)) is not None:
                    entry = await self.queue.take(version_id)
                    if entry is None:
                        break
                    invocation = self.table.get(entry.request_id)
                    if invocation is None or invocation.state not in WAITING:
                        await self.queue.ack(entry.request_id)
                        continue
                    if not session.accepting:  # changed while we awaited the queue
                        await self.queue.requeue(entry.request_id)
                        self._dirty.add(version_id)
                        continue
                    invocation.attempt = entry.attempts  # takes so far, this one included
                    invocation.apply(Event.DISPATCH)
                    session.assign(invocation)
        finally:
            self._pumping.discard(version_id)

    def _pick(self, version_id: str) -> WorkerSession | None:
        sessions = self._by_version.get(version_id)
        if not sessions:
            return None
        turn = self._turn.get(version_id, 0)
        for i in range(len(sessions)):
            session = sessions[(turn + i) % len(sessions)]
            if session.accepting:
                self._turn[version_id] = turn + i + 1
                return session
        return None

    # --- worker sessions ------------------------------------------------------------------

    def session(self, session_id: str) -> WorkerSession | None:
        return self._sessions.get(session_id)

    def sessions(self, version_id: str) -> list[WorkerSession]:
        return list(self._by_version.get(version_id, ()))

    def all_sessions(self) -> list[WorkerSession]:
        return list(self._sessions.values())

    def sessions_where(self, predicate: Callable[[WorkerSession], bool]) -> list[WorkerSession]:
        return [s for s in self._sessions.values() if predicate(s)]

    async def attach(self, session: WorkerSession) -> None:
        self._sessions[session.session_id] = session
        self._by_version.setdefault(session.version_id, []).append(session)
        now = int(time.time() * 1000)
        grant = session.grant
        await self.instances.register(
            LiveInstance(
                instance_id=session.instance_id,
                function_id=grant.function_id,
                version_id=grant.version_id,
                nca_id=grant.nca_id,
                gpu=grant.metadata.get("gpu"),
                instance_type=grant.metadata.get("instanceType"),
                backend=grant.metadata.get("backend"),
                location=grant.metadata.get("location"),
                started_at=now,
                updated_at=now,
            )
        )

    async def detach(self, session: WorkerSession, reason: str) -> None:
        """The stream ended (cleanly or not): redeliver what the worker did not answer."""
        if self._sessions.pop(session.session_id, None) is None:
            return
        session.close()
        members = self._by_version.get(session.version_id, [])
        if session in members:
            members.remove(session)
        if not members:
            self._by_version.pop(session.version_id, None)
        lost = list(session.inflight.values())
        session.inflight.clear()
        for invocation in lost:
            await self._lost(invocation, reason)
        if not any(s.instance_id == session.instance_id for s in self._sessions.values()):
            await self.instances.deregister(session.instance_id)
        if lost:
            log.warning("worker %s lost (%s): %d invocation(s) redelivered", session.instance_id, reason, len(lost))

    async def _lost(self, invocation: Invocation, reason: str) -> None:
        invocation.session = None
        if invocation.state == State.DISPATCHED:
            if invocation.attempt >= self.max_attempts:
                await self.queue.ack(invocation.request_id)
                invocation.fail(f"worker lost {self.max_attempts} times ({reason})")
                return
            invocation.apply(Event.REQUEUE)
            await self.queue.requeue(invocation.request_id)
            self.kick(invocation.request.version_id)
        elif not invocation.final:
            # Status and headers already went to the client: a redelivery would answer twice.
            await self.queue.ack(invocation.request_id)
            invocation.fail(f"worker lost while answering ({reason})")

    async def on_worker_message(self, session: WorkerSession, message: pb.WorkerMessage) -> None:
        session.last_seen = time.monotonic()
        inflight = session.inflight
        for start in message.starts:
            invocation = inflight.get(start.request_id)
            if invocation is not None and invocation.state == State.DISPATCHED:
                headers = [(h.key, h.value) for h in start.headers]
                invocation.start(Answer(start.status, headers, ResultKind(start.kind)))
        for chunk in message.chunks:
            invocation = inflight.get(chunk.request_id)
            if invocation is not None:
                invocation.chunk(chunk.data)
        for progress in message.progress:
            invocation = inflight.get(progress.request_id)
            if invocation is not None and not invocation.final:
                invocation.progress(progress.percent, progress.partial_response)
        for end in message.ends:
            await self._end(session, end)
        if message.draining:
            session.draining = True
        if message.credits:
            session.credits += message.credits
        if message.credits or message.ends:
            self.kick(session.version_id)

    async def _end(self, session: WorkerSession, end: pb.ResponseEnd) -> None:
        invocation = session.inflight.pop(end.request_id, None)
        if invocation is None:
            return  # cancelled earlier; only its credit matters
        await self.queue.ack(end.request_id)
        invocation.session = None
        if invocation.final:
            return
        if end.error or invocation.state != State.RUNNING:
            invocation.fail(end.error or "worker ended the invocation without an answer")
        else:
            invocation.complete()

    # --- undeploy ---------------------------------------------------------------------------

    async def undeploy(self, version_id: str, graceful: bool) -> None:
        """Stop serving a version: queued invocations end, workers drain (graceful) or stop now."""
        for entry in await self.queue.purge(version_id):
            invocation = self.table.get(entry.request_id)
            if invocation is not None and not invocation.final:
                invocation.error = "function version undeployed"
                if invocation.state in WAITING:
                    invocation.apply(Event.CANCEL)
        for session in self.sessions(version_id):
            if graceful:
                session.drain()
            else:
                for invocation in list(session.inflight.values()):
                    await self.cancel(invocation, "function version undeployed")
                session.drain()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
