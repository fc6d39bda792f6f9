"""Gateway-side task scheduling: attached task workers, assignment, and the clocks the gateway owns.

Every pass (on a kick, or every ``tick`` seconds):

1. QUEUED tasks older than their ``maxQueuedDuration`` → EXCEEDED_MAX_QUEUED_DURATION.
2. QUEUED tasks, oldest first, go to an attached worker with a free slot whose gpu and instance
   type equal the task's and whose grant admits the task (its account, and the task's placement:
   ``TaskWorkerGrant.admits``); the
   conditional QUEUED → LAUNCHED update makes sure only one node launches it.
3. Tasks this node's workers run are checked against the store: one cancelled or deleted
   elsewhere (another node, or the API on this one) is stopped on its worker.
4. Backstops for workers that vanished without a trace: LAUNCHED/RUNNING tasks whose heartbeats
   stopped for ``lost_after`` → ERRORED; tasks past ``maxRuntimeDuration`` plus their grace
   period and ``lost_after`` → EXCEEDED_MAX_RUNTIME_DURATION (the worker normally reports it).

Worker reports (``on_message``) are applied with conditional updates too: a report about a task
that is already final (cancelled by the API, say) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.auth.secretbox import SecretBox
from gateway.services.tasks.models import ACTIVE, ON_WORKER, TaskStatus, duration_seconds
from gateway.services.tasks.workers import TaskWorkerGrant
from gateway.store.tasks import Task, TaskRepository
from protos.cfgate.worker.v1 import worker_pb2 as pb

log = logging.getLogger("gateway.tasks")

FINAL_STATES: dict[int, TaskStatus] = {
    pb.TASK_COMPLETED: TaskStatus.COMPLETED,
    pb.TASK_ERRORED: TaskStatus.ERRORED,
    pb.TASK_CANCELED: TaskStatus.CANCELED,
    pb.TASK_EXCEEDED_MAX_RUNTIME_DURATION: TaskStatus.EXCEEDED_MAX_RUNTIME_DURATION,
}


def secret_context(task_id: str, name: str) -> str:
    return f"task-secret:{task_id}:{name}"


@dataclass(eq=False)
class TaskWorkerSession:
    hello: pb.TaskHello
    grant: TaskWorkerGrant
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    running: dict[str, int] = field(default_factory=dict)  # task id → last percent reported
    outbound: asyncio.Queue[pb.TaskGatewayMessage] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)
    # Set when the gateway ends the session (its cluster was deleted); the stream then closes.
    ended: str | None = None

    @property
    def instance_id(self) -> str:
        return self.hello.instance_id or self.session_id

    @property
    def free(self) -> int:
        return max(1, self.hello.max_tasks or 1) - len(self.running)

    def matches(self, task: Task) -> bool:
        spec = task.spec.get("gpuSpecification", {})
        # Case-insensitive, as GPU validation and worker admission read cluster GPU names.
        if not _same_name(spec.get("gpu"), self.hello.gpu) or not _same_name(
            spec.get("instanceType"), self.hello.instance_type
        ):
            return False
        return self.grant.admits(task.nca_id, spec)

    def instance(self) -> dict[str, Any]:
        hello = self.hello
        return {
            "instanceId": self.instance_id,
            "gpu": hello.gpu,
            "instanceType": hello.instance_type,
            "clusterId": self.grant.cluster_id or hello.cluster_id,
            "backend": hello.backend,
        }

    def stop(self, task_id: str, reason: str) -> None:
        self.outbound.put_nowait(pb.TaskGatewayMessage(stops=[pb.TaskStop(task_id=task_id, reason=reason)]))

    def end(self, reason: str) -> None:
        self.ended = reason
        self.outbound.put_nowait(pb.TaskGatewayMessage())  # wakes the stream, which sees ``ended``


class TaskScheduler:
    def __init__(
        self, repository: TaskRepository, secretbox: SecretBox, *, tick: float = 1.0, lost_after: float = 30.0
    ) -> None:
        self.repository = repository
        self._box = secretbox
        self.tick = tick
        self.lost_after = lost_after
        self.sessions: dict[str, TaskWorkerSession] = {}
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False

    # --- sessions -------------------------------------------------------------------------------

    def attach(self, session: TaskWorkerSession) -> None:
        self.sessions[session.session_id] = session
        hello = session.hello
        log.info("task worker %s attached (%s, %s)", session.instance_id, hello.gpu, hello.instance_type)
        self.kick()

    async def detach(self, session: TaskWorkerSession, reason: str) -> None:
        self.sessions.pop(session.session_id, None)
        for task_id in list(session.running):
            message = f"Task errored: its worker {session.instance_id} left ({reason})"
            await self.repository.transition(task_id, ON_WORKER, TaskStatus.ERRORED, message)
        session.running.clear()
        log.info("task worker %s detached: %s", session.instance_id, reason)

    def disconnect(self, match: Callable[[TaskWorkerSession], bool], reason: str) -> int:
        """End the streams of the matching sessions (their running tasks end ERRORED on detach)."""
        ended = [session for session in self.sessions.values() if match(session)]
        for session in ended:
            session.end(reason)
        return len(ended)

    def kick(self) -> None:
        self._kick.set()

    def stop_everywhere(self, task_id: str, reason: str) -> bool:
        """Tell the worker of this node that runs ``task_id`` to terminate it; False if none does."""
        for session in self.sessions.values():
            if task_id in session.running:
                session.stop(task_id, reason)
                session.running.pop(task_id, None)
                return True
        return False

    # --- worker reports -------------------------------------------------------------------------

    async def on_message(self, session: TaskWorkerSession, message: pb.TaskWorkerMessage) -> None:
        session.last_seen = time.monotonic()
        repository = self.repository
        for result in message.results:
            if result.task_id not in session.running:
                continue
            task = await repository.get(result.task_id)
            if task is not None:
                await repository.add_result(task.task_id, task.nca_id, result.name, _metadata(result.metadata_json))
        for update in message.updates:
            await self._update(session, update)
        if message.heartbeat:
            alive = [t for t in message.running if t in session.running]
            await repository.heartbeat(alive, int(time.time() * 1000))

    async def _update(self, session: TaskWorkerSession, update: pb.TaskUpdate) -> None:
        task_id = update.task_id
        if task_id not in session.running:
            return
        repository = self.repository
        percent = min(100, update.percent_complete)
        final = FINAL_STATES.get(update.state)
        if final is None:
            await repository.transition(
                task_id, (TaskStatus.LAUNCHED,), TaskStatus.RUNNING, f"Task running on instance {session.instance_id}"
            )
            if percent != session.running[task_id]:
                session.running[task_id] = percent
                await repository.progress(
                    task_id, (TaskStatus.RUNNING,), percent, update.last_updated_at_ms, f"Progress {percent}%"
                )
            return
        session.running.pop(task_id, None)
        values: dict[str, Any] = {"last_heartbeat_at": int(time.time() * 1000)}
        if final is TaskStatus.COMPLETED:
            values["percent_complete"] = 100
        elif percent:
            values["percent_complete"] = percent
        message = f"Task {final.value.lower().replace('_', ' ')}" + (f": {update.message}" if update.message else "")
        await repository.transition(task_id, ON_WORKER, final, message, **values)
        self.kick()

    # --- the pass -------------------------------------------------------------------------------

    def close(self) -> None:
        """End ``run`` after the pass in progress (never cancel it mid-query: the store is closing)."""
        self._closing = True
        self._kick.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await self._kick.wait()
            self._kick.clear()
            if self._closing:
                return
            try:
                await self.pass_once()
            except Exception:
                log.exception("task scheduling pass failed")

    async def pass_once(self) -> None:
        async with self._lock:
            now_ms = int(time.time() * 1000)
            active = await self.repository.with_status(ACTIVE)
            on_worker = {t.task_id for t in active if t.status in ON_WORKER}
            for task in active:
                if task.status == TaskStatus.QUEUED:
                    if now_ms - task.created_at > _ms(task.spec.get("maxQueuedDuration")):
                        await self._expire_queued(task)
                    elif await self._assign(task, now_ms):
                        on_worker.add(task.task_id)
                else:
                    await self._backstop(task, now_ms)
            await self._reconcile(on_worker)

    async def _expire_queued(self, task: Task) -> None:
        limit = task.spec.get("maxQueuedDuration")
        await self.repository.transition(
            task.task_id,
            (TaskStatus.QUEUED,),
            TaskStatus.EXCEEDED_MAX_QUEUED_DURATION,
            f"Task was not launched within its maxQueuedDuration {limit}",
        )

    async def _assign(self, task: Task, now_ms: int) -> bool:
        session = next((s for s in self.sessions.values() if s.free > 0 and s.matches(task)), None)
        if session is None:
            return False
        launched = await self.repository.transition(
            task.task_id,
            (TaskStatus.QUEUED,),
            TaskStatus.LAUNCHED,
            f"Task launched on instance {session.instance_id}",
            instance=session.instance(),
            launched_at=now_ms,
            last_heartbeat_at=now_ms,
        )
        if not launched:
            return False
        session.running[task.task_id] = 0
        assignment = await self._assignment(task, now_ms)
        session.outbound.put_nowait(pb.TaskGatewayMessage(assignments=[assignment]))
        return True

    async def _assignment(self, task: Task, now_ms: int) -> pb.TaskAssignment:
        spec = task.spec
        sealed = await self.repository.sealed_secrets(task.task_id)
        secrets = {name: self._box.open_sealed(c, secret_context(task.task_id, name)) for name, c in sealed}
        runtime = spec.get("maxRuntimeDuration")
        return pb.TaskAssignment(
            task_id=task.task_id,
            nca_id=task.nca_id,
            name=task.name,
            container_image=spec.get("containerImage") or spec.get("helmChart") or "",
            container_args=spec.get("containerArgs") or "",
            environment={e["key"]: e["value"] for e in spec.get("containerEnvironment") or []},
            max_runtime_ms=_ms(runtime) if runtime else 0,
            termination_grace_ms=_ms(spec.get("terminationGracePeriodDuration")),
            secrets_json=orjson.dumps(secrets) if secrets else b"",
            launched_at_ms=now_ms,
        )

    async def _backstop(self, task: Task, now_ms: int) -> None:
        if task.last_heartbeat_at and now_ms - task.last_heartbeat_at > self.lost_after * 1000:
            await self.repository.transition(
                task.task_id, ON_WORKER, TaskStatus.ERRORED, "Task errored: no heartbeat from its worker"
            )
            self.stop_everywhere(task.task_id, "lost")
            return
        runtime = task.spec.get("maxRuntimeDuration")
        if runtime and task.launched_at:
            limit = _ms(runtime) + _ms(task.spec.get("terminationGracePeriodDuration")) + self.lost_after * 1000
            if now_ms - task.launched_at > limit:
                await self.repository.transition(
                    task.task_id,
                    ON_WORKER,
                    TaskStatus.EXCEEDED_MAX_RUNTIME_DURATION,
                    f"Task exceeded its maxRuntimeDuration {runtime}",
                )
                self.stop_everywhere(task.task_id, "maxRuntimeDuration exceeded")

    async def _reconcile(self, on_worker: set[str]) -> None:
        for session in list(self.sessions.values()):
            for task_id in [t for t in session.running if t not in on_worker]:
                session.stop(task_id, "the task is no longer active")
                session.running.pop(task_id, None)


def _ms(duration: Any) -> int:
    return int(duration_seconds(duration) * 1000) if isinstance(duration, str) and duration else 0


def _metadata(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _same_name(wanted: object, offered: str) -> bool:
    return str(wanted or "").lower() == offered.lower()
