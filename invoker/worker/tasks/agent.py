"""The task worker's session: one ``Tasks`` stream, tasks run side by side, reconnect on breaks.

A session opens the stream (credential in ``hello`` and as ``authorization: Bearer`` metadata),
sends ``hello`` with what this worker offers and waits for ``welcome``. Assignments start a
``TaskRun`` each; stops end one. A heartbeat listing the running tasks goes out every
``heartbeat_interval_ms`` (and in answer to a ``ping``).

When the stream breaks, the gateway has already ERRORED the tasks of the session (they are not
redelivered), so the worker ends them too (SIGTERM, grace, SIGKILL) and reconnects with
exponential backoff and jitter. UNAUTHENTICATED, PERMISSION_DENIED and INVALID_ARGUMENT are
final (``run()`` returns 3). SIGTERM/SIGINT (``request_stop``) ends the running tasks the same
way and returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio

from invoker.worker.tasks.config import TaskWorkerConfig
from invoker.worker.tasks.launcher import ContainerLauncher, ExecLauncher, Launcher, TaskPaths
from invoker.worker.tasks.runner import TaskRun
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc as pb_grpc

__all__ = ["EXIT_OK", "EXIT_REFUSED", "TaskWorkerAgent", "make_launcher"]

log = logging.getLogger("invoker.worker.tasks")

EXIT_OK = 0
EXIT_REFUSED = 3
# FAILED_PRECONDITION: the address is a gateway's gRPC invocation port, not its worker port.
_FATAL = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
_DEFAULT_HEARTBEAT_MS = 5000


class Refused(Exception):
    """The gateway refused this worker for good."""


def make_launcher(config: TaskWorkerConfig) -> Launcher:
    if config.launcher == "exec":
        return ExecLauncher()
    return ContainerLauncher(config.launcher, config.container_gpus)


class TaskWorkerAgent:
    def __init__(self, config: TaskWorkerConfig, launcher: Launcher | None = None) -> None:
        self.config = config
        self.launcher = launcher or make_launcher(config)
        self.runs: dict[str, TaskRun] = {}
        self._jobs: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.sessions = 0

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        config = self.config
        temporary = config.work_dir is None
        work_dir = Path(tempfile.mkdtemp(prefix="cfgate-tasks-")) if config.work_dir is None else config.work_dir
        failures = 0
        try:
            while not self._stop.is_set():
                received = False
                try:
                    received = await self._session(work_dir)
                except Refused as exc:
                    log.error("refused by the gateway: %s", exc)
                    return EXIT_REFUSED
                except (grpc.aio.AioRpcError, OSError) as exc:
                    log.warning("task session with %s ended: %s", config.gateway, _describe(exc))
                finally:
                    await self._end_all("the worker's session with the gateway ended")
                if self._stop.is_set():
                    break
                failures = 0 if received else failures + 1
                delay = min(config.backoff_max, config.backoff_initial * 2**failures)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(random.uniform(delay / 2, delay)):
                        await self._stop.wait()
            return EXIT_OK
        finally:
            if temporary:
                shutil.rmtree(work_dir, ignore_errors=True)

    async def _session(self, work_dir: Path) -> bool:
        """Serve one stream; True if the gateway welcomed this worker."""
        config = self.config
        outbox: asyncio.Queue[pb.TaskWorkerMessage | None] = asyncio.Queue()
        hello = pb.TaskHello(
            credential=config.token,
            instance_id=config.instance_id,
            gpu=config.gpu,
            instance_type=config.instance_type,
            cluster_id=config.cluster_id,
            backend=config.backend,
            max_tasks=config.max_tasks,
            labels=config.labels,
        )
        outbox.put_nowait(pb.TaskWorkerMessage(hello=hello))

        async def outgoing() -> AsyncIterator[pb.TaskWorkerMessage]:
            while (message := await outbox.get()) is not None:
                yield message

        if config.tls:
            channel = grpc.aio.secure_channel(config.gateway, grpc.ssl_channel_credentials())
        else:
            channel = grpc.aio.insecure_channel(config.gateway)
        async with channel:
            stub = pb_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
            call = stub.Tasks(outgoing(), metadata=(("authorization", f"Bearer {config.token}"),))
            try:
                first = await call.read()
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _FATAL:
                    raise Refused(f"{exc.code().name}: {exc.details()}") from exc
                raise
            if first is grpc.aio.EOF or not first.HasField("welcome"):
                return False
            self.sessions += 1
            interval = (first.welcome.heartbeat_interval_ms or _DEFAULT_HEARTBEAT_MS) / 1000
            log.info("task worker %s welcomed: session %s", config.instance_id, first.welcome.session_id)
            beats = asyncio.ensure_future(self._heartbeats(outbox, interval))
            reader = asyncio.ensure_future(self._read(call, outbox, work_dir))
            stopping = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({reader, stopping, beats}, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():
                    await self._end_all("the worker is stopping")
                    await asyncio.sleep(0.2)  # let the final reports go out
            finally:
                for job in (beats, reader, stopping):
                    job.cancel()
                outbox.put_nowait(None)
                call.cancel()
                await asyncio.gather(beats, reader, stopping, return_exceptions=True)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                error = reader.exception()
                assert error is not None
                raise error
            return True

    async def _heartbeats(self, outbox: asyncio.Queue[pb.TaskWorkerMessage | None], interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            outbox.put_nowait(self._heartbeat())

    def _heartbeat(self) -> pb.TaskWorkerMessage:
        return pb.TaskWorkerMessage(heartbeat=True, running=sorted(self.runs))

    async def _read(
        self,
        call: grpc.aio.StreamStreamCall[pb.TaskWorkerMessage, pb.TaskGatewayMessage],
        outbox: asyncio.Queue[pb.TaskWorkerMessage | None],
        work_dir: Path,
    ) -> None:
        while True:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            assert isinstance(message, pb.TaskGatewayMessage)
            for assignment in message.assignments:
                self._start(assignment, outbox, work_dir)
            for stop in message.stops:
                run = self.runs.get(stop.task_id)
                if run is not None:
                    run.stop(stop.reason)
            if message.ping:
                outbox.put_nowait(self._heartbeat())

    def _start(
        self, assignment: pb.TaskAssignment, outbox: asyncio.Queue[pb.TaskWorkerMessage | None], work_dir: Path
    ) -> None:
        if assignment.task_id in self.runs:
            return
        config = self.config
        run = TaskRun(
            assignment,
            TaskPaths(work_dir / assignment.task_id),
            self.launcher,
            outbox.put_nowait,
            poll_interval=config.poll_interval,
            stale_after=config.progress_stale_seconds,
            completion_wait=config.completion_wait,
        )
        self.runs[assignment.task_id] = run
        job = asyncio.create_task(self._guarded(run))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _guarded(self, run: TaskRun) -> None:
        try:
            await run.run()
        except Exception:
            log.exception("task %s failed in the worker", run.task_id)
        finally:
            self.runs.pop(run.task_id, None)

    async def _end_all(self, reason: str) -> None:
        for run in list(self.runs.values()):
            run.stop(reason)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details()}"
    return repr(exc)
