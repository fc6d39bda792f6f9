"""Matching queued invocations to worker credits, and everything that happens to them after.

Per function version: a queue (the ``InvocationQueue`` protocol) and the worker sessions serving
it. A *pump* runs whenever there may be work for a free credit; it takes from the queue and puts
invocations in a session's outbox. Answers arriving from a worker are applied to the invocation
(``invoker.invocations``); a lost worker's unanswered invocations go back to the head of the queue
(``attempt + 1``) until ``max_attempts``, which ends them ``errored``.

With Redis (``replies`` set) the queue is shared: an entry taken here whose client waits in
another process becomes a ``RemoteInvocation`` that relays its answer there, and answers relayed
here (``on_reply``) are applied to this process's own invocations; a cancel of an invocation
another process holds is sent to that process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from invoker.errors import BackendUnavailable
from invoker.instances import InstanceRegistry, LiveInstance
from invoker.invocations import (
    Answer,
    GrpcTrailers,
    Invocation,
    InvocationRequest,
    InvocationTable,
    ResultKind,
)
from invoker.lifecycle import Event, State
from invoker.logs import invocation_fields
from invoker.metrics.dispatch import DispatchMetrics
from invoker.queues.base import InvocationQueue, QueueEntry
from invoker.remote import RemoteInvocation
from invoker.replies import CANCEL, CHUNK, END, FRAMES, PROGRESS, START, TAKEN, Reply, ReplyBus
from invoker.results import ResultStore
from invoker.sessions import WorkerSession
from protos.cfgate.worker.v1 import worker_pb2 as pb

log = logging.getLogger("invoker.dispatch")

WAITING = (State.QUEUED, State.REQUEUED)
TAKE_BATCH = 64  # entries per take: one Redis round trip feeds many credits


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
        replies: ReplyBus | None = None,
        results: ResultStore | None = None,
        metrics: DispatchMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.metrics = metrics
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
        # An in-process queue's take without a coroutine (``MemoryQueue.take_many_nowait``).
        self._take_now: Callable[[str, int], list[QueueEntry]] | None = getattr(queue, "take_many_nowait", None)
        self._enqueue_now: Callable[..., None] | None = getattr(queue, "enqueue_nowait", None)
        self.replies = replies
        self.results = results
        self._remote: dict[str, RemoteInvocation] = {}
        self._cancelled: dict[str, float] = {}  # cancels that overtook their take (monotonic time)
        # Streaming gRPC invocations: request messages waiting for the invocation to be taken, and
        # those that already reached a worker (no redelivery then: the messages are gone).
        self._grpc_pending: dict[str, list[tuple[bytes, bool]]] = {}
        self._grpc_streamed: set[str] = set()
        if replies is not None:
            replies.handler = self.on_reply

    @property
    def process_id(self) -> str:
        return self.replies.process_id if self.replies is not None else ""

    # --- invocations ----------------------------------------------------------------------

    async def submit(self, invocation: Invocation) -> None:
        request = invocation.request
        request.origin = self.process_id
        if self.metrics is not None:
            invocation.final_hook = self.metrics.finished
        self.table.add(invocation)
        enqueue_now = self._enqueue_now
        try:
            if enqueue_now is not None:
                enqueue_now(
                    request.version_id, request.function_id, request.request_id, request, limit=self.max_queue_depth
                )
            else:
                await self.queue.enqueue(
                    request.version_id, request.function_id, request.request_id, request, limit=self.max_queue_depth
                )
        except BaseException:
            self.table.forget(request.request_id)
            raise
        loop = asyncio.get_running_loop()
        invocation.timer = loop.call_later(self.queue_lifetime, self._expire_soon, invocation)
        self.kick(request.version_id)

    async def cancel(self, invocation: Invocation, reason: str) -> None:
        """The client gave up (or the function was undeployed): stop it wherever it is."""
        if invocation.final:
            return
        if self.metrics is not None:
            self.metrics.cancellations += 1
        session = invocation.session
        if isinstance(session, WorkerSession) and invocation.request_id in session.inflight:
            session.cancel(invocation.request_id, reason)
        try:
            entry = await self.queue.cancel(invocation.request_id)
        except BackendUnavailable as exc:
            log.warning(
                "cancel of %s not recorded in the queue: %s",
                invocation.request_id,
                exc,
                extra=invocation_fields(invocation.request),
            )
            entry = None
        if entry is not None and entry.holder and self.replies is not None:
            self.replies.send(entry.holder, Reply(CANCEL, invocation.request_id, 0, self.process_id, error=reason))
        if not invocation.final:
            invocation.error = reason
            invocation.apply(Event.CANCEL)

    def _expire_soon(self, invocation: Invocation) -> None:
        self._spawn(self._expire(invocation))

    async def _expire(self, invocation: Invocation) -> None:
        invocation.timer = None
        if invocation.state in WAITING:
            try:
                await self.queue.cancel(invocation.request_id)
            except BackendUnavailable:
                self._restart_timer(invocation, 5.0)  # try again once Redis answers
                return
            if invocation.state not in WAITING:
                return
            invocation.error = "no worker took the invocation within its queue lifetime"
            if self.metrics is not None:
                self.metrics.expirations += 1
            invocation.apply(Event.EXPIRE)

    def _restart_timer(self, invocation: Invocation, delay: float) -> None:
        invocation.timer = asyncio.get_running_loop().call_later(delay, self._expire_soon, invocation)

    # --- the pump -------------------------------------------------------------------------

    def kick(self, version_id: str) -> None:
        self._dirty.add(version_id)
        if version_id in self._pumping:
            return
        self._pumping.add(version_id)
        take_now = self._take_now
        if take_now is not None:
            # An in-process queue answers at once: the pump is one loop callback, not a task
            # (dispatch path 41 -> 34 us per invocation at one submit per loop pass).
            asyncio.get_running_loop().call_soon(self._pump_now, version_id, take_now)
        else:
            self._spawn(self._pump(version_id))

    async def _pump(self, version_id: str) -> None:
        try:
            while version_id in self._dirty:
                self._dirty.discard(version_id)
                while (free := self._free_credits(version_id)) > 0:
                    try:
                        entries = await self.queue.take_many(version_id, min(free, TAKE_BATCH))
                    except BackendUnavailable as exc:
                        log.debug("take from %s failed: %s", version_id, exc)
                        return  # the queue's periodic wake tries again
                    if not entries:
                        break
                    for entry in entries:
                        later = self._hand_over(self._pick(version_id), entry)
                        if later is not None:
                            await later
        finally:
            self._pumping.discard(version_id)

    def _pump_now(self, version_id: str, take_now: Callable[[str, int], list[QueueEntry]]) -> None:
        """``_pump`` for a queue without round trips; the rare queue calls of a hand-over run as tasks."""
        try:
            while version_id in self._dirty:
                self._dirty.discard(version_id)
                while (free := self._free_credits(version_id)) > 0:
                    entries = take_now(version_id, min(free, TAKE_BATCH))
                    if not entries:
                        break
                    for entry in entries:
                        later = self._hand_over(self._pick(version_id), entry)
                        if later is not None:
                            self._spawn(later)
        finally:
            self._pumping.discard(version_id)

    def _free_credits(self, version_id: str) -> int:
        return sum(s.free for s in self._by_version.get(version_id, ()) if s.accepting)

    def _hand_over(self, session: WorkerSession | None, entry: QueueEntry) -> Coroutine[Any, Any, None] | None:
        """Assign the entry to ``session`` at once; the queue round trips of the rare outcomes
        (stale entry, session gone, attempts used up) are returned for the pump to await — a
        coroutine per entry for the common case cost ~1 µs per invocation."""
        invocation = self.table.get(entry.request_id) or self._remote.get(entry.request_id) or self._adopt(entry)
        if invocation is None or invocation.state not in WAITING:
            return self._ack(entry.request_id)
        if session is None or not session.accepting:  # changed while we awaited the queue
            self._remote.pop(entry.request_id, None)
            return self._requeue(entry)
        invocation.attempt = entry.attempts  # takes so far, this one included
        if entry.attempts > self.max_attempts:  # reclaimed from lost processes too often
            return self._give_up(invocation, entry.request_id)
        invocation.apply(Event.DISPATCH)
        session.assign(invocation)
        if self._grpc_pending and entry.request_id in self._grpc_pending:
            self._flush_grpc(invocation)
        if self.metrics is not None:
            self.metrics.dispatched(invocation, time.time())
        return None

    async def _ack(self, request_id: str) -> None:
        await self.queue.ack(request_id)

    async def _requeue(self, entry: QueueEntry) -> None:
        await self.queue.requeue(entry.request_id)
        self.kick(entry.version_id)  # within a running pump: marks it dirty, so it looks again

    async def _give_up(self, invocation: Invocation | RemoteInvocation, request_id: str) -> None:
        if self.metrics is not None:
            self.metrics.attempts_exhausted += 1
        await self.queue.ack(request_id)
        invocation.fail(f"worker lost {self.max_attempts} times")

    def _adopt(self, entry: QueueEntry) -> RemoteInvocation | None:
        """An entry from the shared queue whose client is held by another process."""
        request = entry.payload
        if self.replies is None or not isinstance(request, InvocationRequest):
            return None
        if not request.origin or request.origin == self.process_id:
            return None  # ours, and already forgotten (answered, cancelled)
        if self._cancelled.pop(request.request_id, None) is not None:
            return None
        invocation = RemoteInvocation(request, self.replies, self._remote_final)
        self._remote[request.request_id] = invocation
        return invocation

    def _remote_final(self, invocation: RemoteInvocation) -> None:
        self._remote.pop(invocation.request_id, None)
        if self.results is not None and not invocation.quiet:
            self._spawn(self._store_if_orphan(invocation))

    async def _store_if_orphan(self, invocation: RemoteInvocation) -> None:
        """The origin process is gone: keep the result in Redis, where any process finds it."""
        assert self.replies is not None and self.results is not None
        try:
            if await self.replies.presence.alive(invocation.request.origin):
                return
            await self.results.store_final(invocation, bytes(invocation.body), only_if_exists=False)
        except Exception as exc:
            fields = invocation_fields(invocation.request)
            log.warning("result of %s (origin lost) not stored: %s", invocation.request_id, exc, extra=fields)

    # --- streaming gRPC requests -------------------------------------------------------------

    def grpc_requests(self, invocation: Invocation, data: bytes, half_close: bool) -> None:
        """More request messages (gRPC framing) of a streaming gRPC invocation of this process."""
        self._grpc_pending.setdefault(invocation.request_id, []).append((data, half_close))
        if invocation.state not in WAITING:
            self._flush_grpc(invocation)

    def forget_grpc(self, request_id: str) -> None:
        self._grpc_pending.pop(request_id, None)
        self._grpc_streamed.discard(request_id)

    def _flush_grpc(self, invocation: Invocation) -> None:
        request_id = invocation.request_id
        session = invocation.session
        if isinstance(session, WorkerSession):
            if request_id not in session.inflight:
                return
            for data, half_close in self._grpc_pending.pop(request_id, ()):
                session.grpc_requests(request_id, data, half_close)
            self._grpc_streamed.add(request_id)
        elif isinstance(session, str) and session and self.replies is not None:
            for data, half_close in self._grpc_pending.pop(request_id, ()):
                reply = Reply(
                    FRAMES, request_id, invocation.attempt, self.process_id, data=data, status=int(half_close)
                )
                self.replies.send(session, reply)
            self._grpc_streamed.add(request_id)

    # --- replies from other processes -------------------------------------------------------

    def on_reply(self, reply: Reply) -> None:
        if reply.kind == CANCEL:
            self._remote_cancel(reply.request_id, reply.error)
            return
        if reply.kind in (FRAMES, TAKEN):
            self._grpc_reply(reply)
            return
        invocation = self.table.get(reply.request_id)
        if invocation is None or invocation.final or reply.attempt < invocation.attempt:
            return  # unknown, finished, or from an attempt since redelivered
        if reply.kind == START:
            self._remote_start(invocation, reply)
        elif reply.kind == CHUNK:
            if invocation.answer is not None and reply.attempt == invocation.attempt:
                invocation.chunk(reply.data)
        elif reply.kind == PROGRESS:
            self._dispatched(invocation, reply)
            invocation.progress(reply.percent, reply.data)
        elif reply.kind == END:
            if invocation.state in WAITING and reply.attempt == 0:  # purged by an undeploy elsewhere
                invocation.error = reply.error
                invocation.apply(Event.CANCEL)
                return
            self._dispatched(invocation, reply)
            if reply.trailers is not None:
                invocation.trailers = GrpcTrailers(*reply.trailers)
            if reply.error or invocation.state != State.RUNNING:
                invocation.fail(reply.error or "worker ended the invocation without an answer")
            else:
                invocation.complete()

    def _grpc_reply(self, reply: Reply) -> None:
        request_id = reply.request_id
        if reply.kind == FRAMES:  # here the invocation runs, its client is elsewhere
            remote = self._remote.get(request_id)
            if remote is not None and not remote.final:
                self._grpc_pending.setdefault(request_id, []).append((reply.data, bool(reply.status)))
                self._flush_grpc(remote)
            return
        invocation = self.table.get(request_id)  # TAKEN: the client is here
        if invocation is not None and not invocation.final and reply.attempt >= invocation.attempt:
            self._dispatched(invocation, reply)
            if request_id in self._grpc_pending:
                self._flush_grpc(invocation)

    def _dispatched(self, invocation: Invocation, reply: Reply) -> None:
        if invocation.state in WAITING:
            invocation.attempt = reply.attempt
            invocation.session = reply.sender
            invocation.apply(Event.DISPATCH)

    def _remote_start(self, invocation: Invocation, reply: Reply) -> None:
        if invocation.state == State.RUNNING:
            if reply.attempt == invocation.attempt:
                return
            # A newer attempt: the process that had started the answer was lost.
            if invocation.delivered:
                invocation.fail("worker lost while answering")
                return
            invocation.answer = None
            invocation.chunks.clear()
            invocation.state = State.DISPATCHED
        self._dispatched(invocation, reply)
        invocation.attempt = reply.attempt
        invocation.session = reply.sender
        invocation.start(Answer(reply.status, reply.headers, ResultKind(reply.result_kind)))

    def _remote_cancel(self, request_id: str, reason: str) -> None:
        invocation = self._remote.get(request_id)
        if invocation is None:
            now = time.monotonic()
            if len(self._cancelled) > 10_000:
                self._cancelled = {rid: t for rid, t in self._cancelled.items() if now - t < 60}
            self._cancelled[request_id] = now
            return
        invocation.quiet = True
        session = invocation.session
        if isinstance(session, WorkerSession) and request_id in session.inflight:
            session.cancel(request_id, reason)
        if not invocation.final:
            invocation.error = reason
            invocation.apply(Event.CANCEL)

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
        members = self._by_version.setdefault(session.version_id, [])
        members.append(session)
        if len(members) == 1:
            version_id = session.version_id
            self.queue.watch(version_id, lambda: self.kick(version_id))
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
            self.queue.unwatch(session.version_id)
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
        if invocation.request_id in self._grpc_streamed:
            # Request messages already went to the lost worker: a redelivery would lack them.
            self._grpc_streamed.discard(invocation.request_id)
            await self.queue.ack(invocation.request_id)
            invocation.fail(f"worker lost during a streaming gRPC call ({reason})")
            return
        if invocation.state == State.DISPATCHED:
            if invocation.attempt >= self.max_attempts:
                if self.metrics is not None:
                    self.metrics.attempts_exhausted += 1
                await self.queue.ack(invocation.request_id)
                invocation.fail(f"worker lost {self.max_attempts} times ({reason})")
                return
            invocation.apply(Event.REQUEUE)
            if self.metrics is not None:
                self.metrics.redeliveries += 1
            self._remote.pop(invocation.request_id, None)
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
        if message.progress or message.grpc_trailers:
            _apply_progress_and_trailers(inflight, message)
        finished = [end.request_id for end in message.ends if self._end(session, end)]
        if finished:
            if self.queue.remote:
                # Acks ride one pipelined round trip, off the stream reader: awaiting each one
                # here capped Redis mode at one round trip per answer (~1,000/s).
                self._spawn(self._ack_all(finished))
            else:
                for request_id in finished:
                    await self.queue.ack(request_id)
        if message.draining:
            session.draining = True
        if message.credits:
            self._grant(session, message.credits)
        if message.credits or message.ends:
            self.kick(session.version_id)

    def _grant(self, session: WorkerSession, credits: int) -> None:
        session.credits += credits
        if self.metrics is not None:
            self.metrics.credits_granted += credits

    def _end(self, session: WorkerSession, end: pb.ResponseEnd) -> bool:
        """Finish the invocation; True when its queue entry is now done (to be acked)."""
        invocation = session.inflight.pop(end.request_id, None)
        if invocation is None:
            return False  # cancelled earlier; only its credit matters
        invocation.session = None
        if self._grpc_streamed:
            self._grpc_streamed.discard(end.request_id)
            self._grpc_pending.pop(end.request_id, None)
        if not invocation.final:
            if end.error or invocation.state != State.RUNNING:
                invocation.fail(end.error or "worker ended the invocation without an answer")
            else:
                invocation.complete()
        return True  # the answer is handed back

    async def _ack_all(self, request_ids: list[str]) -> None:
        # Each ack keeps itself for a retry when Redis is away (``RedisQueue.ack``).
        ack_many = getattr(self.queue, "ack_many", None)
        if ack_many is not None:
            try:
                await ack_many(request_ids)
            except Exception as exc:
                log.error("acks of %d answered invocation(s) failed: %r", len(request_ids), exc)
            return
        results = await asyncio.gather(*(self.queue.ack(rid) for rid in request_ids), return_exceptions=True)
        for request_id, result in zip(request_ids, results, strict=True):
            if isinstance(result, Exception):
                log.error("ack of %s failed: %r", request_id, result)

    # --- undeploy ---------------------------------------------------------------------------

    async def undeploy(self, version_id: str, graceful: bool) -> None:
        """Stop serving a version: queued invocations end, workers drain (graceful) or stop now."""
        for entry in await self.queue.purge(version_id):
            invocation = self.table.get(entry.request_id)
            origin = getattr(entry.payload, "origin", "")
            if invocation is None and self.replies is not None and origin and origin != self.process_id:
                self.replies.send(
                    origin, Reply(END, entry.request_id, 0, self.process_id, error="function version undeployed")
                )
            if invocation is not None and not invocation.final:
                invocation.error = "function version undeployed"
                if invocation.state in WAITING:
                    if self.metrics is not None:
                        self.metrics.cancellations += 1
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


def _apply_progress_and_trailers(inflight: dict[str, Invocation], message: pb.WorkerMessage) -> None:
    for progress in message.progress:
        invocation = inflight.get(progress.request_id)
        if invocation is not None and not invocation.final:
            invocation.progress(progress.percent, progress.partial_response)
    for trailers in message.grpc_trailers:
        invocation = inflight.get(trailers.request_id)
        if invocation is not None:
            metadata = [(h.key, h.value) for h in trailers.metadata]
            invocation.trailers = GrpcTrailers(trailers.code, trailers.message, metadata)
