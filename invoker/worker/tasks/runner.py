"""One task on the worker: launch, watch progress and results, enforce its clocks, report.

While the process runs, every ``poll_interval``:

* the progress file is read; a new ``percentComplete`` is reported as RUNNING with that percent.
  Any change of the file (a refreshed ``lastUpdatedAt`` too) counts as fresh progress;
* new result files are reported;
* ``percentComplete`` 100 → the task has ``completion_wait`` to exit on its own, then COMPLETED;
* no fresh progress for ``progress_stale_seconds`` (from the start) → ERRORED;
* past ``maxRuntimeDuration`` (from the launch) → EXCEEDED_MAX_RUNTIME_DURATION;
* a stop from the gateway (cancel, delete) → CANCELED.

Ending a task that still runs is SIGTERM, then SIGKILL after its termination grace period. A
process that exits by itself is COMPLETED with exit code 0 after reporting 100 %, else ERRORED.
The remaining results are always reported before the final state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import orjson

from invoker.worker.tasks.launcher import Launcher, LaunchError, TaskPaths, TaskProcess
from invoker.worker.tasks.progress import ResultScanner, read_progress
from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = ["TaskRun"]

log = logging.getLogger("invoker.worker.tasks")

Send = Callable[[pb.TaskWorkerMessage], None]


class TaskRun:
    def __init__(
        self,
        assignment: pb.TaskAssignment,
        paths: TaskPaths,
        launcher: Launcher,
        send: Send,
        *,
        poll_interval: float,
        stale_after: float,
        completion_wait: float,
    ) -> None:
        self.assignment = assignment
        self.paths = paths
        self._launcher = launcher
        self._send = send
        self._poll = poll_interval
        self._stale_after = stale_after
        self._completion_wait = completion_wait
        self._stopped = asyncio.Event()
        self.stop_reason = ""
        self.percent = 0
        self.process: TaskProcess | None = None

    @property
    def task_id(self) -> str:
        return self.assignment.task_id

    def stop(self, reason: str) -> None:
        self.stop_reason = reason or "stopped"
        self._stopped.set()

    def _update(self, state: int, message: str = "", last_updated_ms: int = 0) -> None:
        update = pb.TaskUpdate(
            task_id=self.task_id,
            state=state,  # type: ignore[arg-type]
            percent_complete=self.percent,
            last_updated_at_ms=last_updated_ms,
            message=message,
        )
        self._send(pb.TaskWorkerMessage(updates=[update]))

    def _results(self, scanner: ResultScanner, final: bool = False) -> None:
        found = scanner.scan(final)
        if found:
            reports = [
                pb.TaskResultReport(task_id=self.task_id, name=name, metadata_json=orjson.dumps(meta))
                for name, meta in found
            ]
            self._send(pb.TaskWorkerMessage(results=reports))

    async def run(self) -> None:
        paths = self.paths
        try:
            paths.create(self.assignment.secrets_json)
            self.process = await self._launcher.start(self.assignment, paths)
        except (LaunchError, OSError) as exc:
            self._update(pb.TASK_ERRORED, f"launch failed: {exc}")
            return
        log.info("task %s started (pid %d)", self.task_id, self.process.pid)
        self._update(pb.TASK_RUNNING)
        scanner = ResultScanner(paths.results)
        state, message = await self._watch(self.process, scanner)
        self._results(scanner, final=True)
        self._update(state, message)
        log.info("task %s ended: %s %s", self.task_id, pb.TaskState.Name(state), message)

    async def _watch(self, process: TaskProcess, scanner: ResultScanner) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        fresh = loop.time()
        runtime_limit = self.assignment.max_runtime_ms / 1000
        launched = self.assignment.launched_at_ms / 1000 if self.assignment.launched_at_ms else time.time()
        exited = asyncio.ensure_future(process.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        last_raw = b""
        try:
            while True:
                await asyncio.wait({exited, stopped}, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
                if stopped.done():
                    await self._end(process, exited)
                    return pb.TASK_CANCELED, self.stop_reason
                last_raw, fresh = self._read_progress(last_raw, fresh, loop.time())
                if exited.done():
                    return self._exit_state(exited.result())
                self._results(scanner)
                now = loop.time()
                if self.percent >= 100:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(exited), self._completion_wait)
                    await self._end(process, exited)
                    return pb.TASK_COMPLETED, ""
                if now - fresh > self._stale_after:
                    await self._end(process, exited)
                    return pb.TASK_ERRORED, f"progress stale for more than {self._stale_after:g} s"
                if runtime_limit and time.time() - launched > runtime_limit:
                    await self._end(process, exited)
                    return pb.TASK_EXCEEDED_MAX_RUNTIME_DURATION, f"ran longer than {runtime_limit:g} s"
        finally:
            stopped.cancel()
            if not exited.done():
                exited.cancel()

    def _read_progress(self, last_raw: bytes, fresh: float, now: float) -> tuple[bytes, float]:
        progress = read_progress(self.paths.progress_file)
        if progress is None or progress.raw == last_raw:
            return last_raw, fresh
        if progress.percent > self.percent:
            self.percent = progress.percent
            self._update(pb.TASK_RUNNING, last_updated_ms=progress.last_updated_ms)
        return progress.raw, now

    def _exit_state(self, code: int) -> tuple[int, str]:
        if code == 0 and self.percent >= 100:
            return pb.TASK_COMPLETED, ""
        if code == 0:
            return pb.TASK_ERRORED, f"exited with code 0 at {self.percent}% (never reported 100%)"
        return pb.TASK_ERRORED, f"exited with code {code}"

    async def _end(self, process: TaskProcess, exited: asyncio.Future[int]) -> None:
        """SIGTERM, then SIGKILL after the termination grace period."""
        if exited.done():
            return
        process.terminate()
        grace = self.assignment.termination_grace_ms / 1000 or 30.0
        try:
            await asyncio.wait_for(asyncio.shield(exited), grace)
        except TimeoutError:
            log.warning("task %s ignored SIGTERM for %.0f s: killing it", self.task_id, grace)
            await process.kill()
            await exited
