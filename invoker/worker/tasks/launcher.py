"""Launchers: how a task's container is started, and stopped with its grace period.

* ``exec`` (the development default) runs ``containerArgs``, split like a shell would, as a
  local command in its own process group, with the task directory as working directory. The
  image is ignored. The environment is the task's ``containerEnvironment`` and the ``NVCT_*``
  variables over a few harmless variables of the worker (``PATH``, ``HOME``, locale): never the
  worker's own, which may hold its credential.
* ``docker`` / ``podman`` run the image with the results, progress and secrets directories
  mounted (``/var/nvct/results``, ``/var/nvct/progress``, ``/var/secrets``). Environment values
  are passed by name only (``-e NAME``, values in the client's environment), so they never appear
  on a command line.

Stopping is SIGTERM (``terminate``) and, after the grace period, SIGKILL (``kill``), to the whole
process group for ``exec``; the container runtime forwards SIGTERM to the container and is asked
to ``kill`` it by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = [
    "ContainerLauncher",
    "ExecLauncher",
    "LaunchError",
    "Launcher",
    "TaskPaths",
    "TaskProcess",
    "container_command",
    "task_environment",
]

PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
CONTAINER_RESULTS = "/var/nvct/results"
CONTAINER_PROGRESS_DIR = "/var/nvct/progress"
CONTAINER_SECRETS_DIR = "/var/secrets"
PROGRESS_FILE = "progress.json"
SECRETS_FILE = "secrets.json"


class LaunchError(Exception):
    """The task cannot be started (nothing to run, runtime missing, …)."""


@dataclass(frozen=True, slots=True)
class TaskPaths:
    root: Path

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def progress_dir(self) -> Path:
        return self.root / "progress"

    @property
    def progress_file(self) -> Path:
        return self.progress_dir / PROGRESS_FILE

    @property
    def secrets_dir(self) -> Path:
        return self.root / "secrets"

    @property
    def secrets_file(self) -> Path:
        return self.secrets_dir / SECRETS_FILE

    @property
    def log_file(self) -> Path:
        return self.root / "output.log"

    def create(self, secrets_json: bytes) -> None:
        for directory in (self.results, self.progress_dir, self.secrets_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets_json or b"{}")


def task_environment(
    assignment: pb.TaskAssignment, *, progress_file: str, results_dir: str, secrets_file: str
) -> dict[str, str]:
    """The task's own variables: containerEnvironment, then the NVCT_* contract (which wins)."""
    env = dict(assignment.environment)
    env.update(
        NVCT_TASK_ID=assignment.task_id,
        NVCT_TASK_NAME=assignment.name,
        NVCT_NCA_ID=assignment.nca_id,
        NVCT_PROGRESS_FILE_PATH=progress_file,
        NVCT_RESULTS_DIR=results_dir,
        # cfgate: where the secrets file is (the reference's /var/secrets/secrets.json in containers).
        NVCT_SECRETS_PATH=secrets_file,
    )
    return env


class TaskProcess(Protocol):
    @property
    def pid(self) -> int: ...

    async def wait(self) -> int: ...

    def terminate(self) -> None: ...

    async def kill(self) -> None: ...


class Launcher(Protocol):
    async def start(self, assignment: pb.TaskAssignment, paths: TaskPaths) -> TaskProcess: ...


class _Process:
    """A child in its own process group (``start_new_session``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        return await self._process.wait()

    def _signal(self, signum: int) -> None:
        if self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    async def kill(self) -> None:
        self._signal(signal.SIGKILL)


def _base_env() -> dict[str, str]:
    return {name: os.environ[name] for name in PASS_THROUGH if name in os.environ}


class ExecLauncher:
    async def start(self, assignment: pb.TaskAssignment, paths: TaskPaths) -> TaskProcess:
        try:
            argv = shlex.split(assignment.container_args)
        except ValueError as exc:
            raise LaunchError(f"containerArgs cannot be split: {exc}") from None
        if not argv:
            raise LaunchError("containerArgs is empty: the exec launcher has nothing to run")
        env = _base_env()
        env.update(
            task_environment(
                assignment,
                progress_file=str(paths.progress_file),
                results_dir=str(paths.results),
                secrets_file=str(paths.secrets_file),
            )
        )
        with open(paths.log_file, "ab") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=paths.root,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        return _Process(process)


def container_name(task_id: str) -> str:
    return f"cfgate-task-{task_id}"


def container_command(runtime: str, assignment: pb.TaskAssignment, paths: TaskPaths, gpus: str) -> list[str]:
    """``<runtime> run …`` for the task; variables by name only (their values go in the env)."""
    if not assignment.container_image:
        raise LaunchError("the task has no containerImage")
    env = task_environment(
        assignment,
        progress_file=f"{CONTAINER_PROGRESS_DIR}/{PROGRESS_FILE}",
        results_dir=CONTAINER_RESULTS,
        secrets_file=f"{CONTAINER_SECRETS_DIR}/{SECRETS_FILE}",
    )
    command = [runtime, "run", "--rm", "--name", container_name(assignment.task_id), "--init"]
    if gpus:
        command += ["--gpus", gpus]
    command += [
        "-v", f"{paths.results}:{CONTAINER_RESULTS}",
        "-v", f"{paths.progress_dir}:{CONTAINER_PROGRESS_DIR}",
        "-v", f"{paths.secrets_dir}:{CONTAINER_SECRETS_DIR}:ro",
    ]  # fmt: skip
    for name in sorted(env):
        command += ["-e", name]
    command.append(assignment.container_image)
    try:
        command += shlex.split(assignment.container_args)
    except ValueError as exc:
        raise LaunchError(f"containerArgs cannot be split: {exc}") from None
    return command


class _Container(_Process):
    def __init__(self, process: asyncio.subprocess.Process, runtime: str, name: str) -> None:
        super().__init__(process)
        self._runtime = runtime
        self._name = name

    async def kill(self) -> None:
        with contextlib.suppress(OSError):
            killer = await asyncio.create_subprocess_exec(
                self._runtime, "kill", self._name, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            await killer.wait()
        await super().kill()


class ContainerLauncher:
    def __init__(self, runtime: str, gpus: str = "all") -> None:
        self.runtime = runtime
        self.gpus = gpus

    async def start(self, assignment: pb.TaskAssignment, paths: TaskPaths) -> TaskProcess:
        command = container_command(self.runtime, assignment, paths, self.gpus)
        env = _base_env()
        env.update(
            task_environment(
                assignment,
                progress_file=f"{CONTAINER_PROGRESS_DIR}/{PROGRESS_FILE}",
                results_dir=CONTAINER_RESULTS,
                secrets_file=f"{CONTAINER_SECRETS_DIR}/{SECRETS_FILE}",
            )
        )
        with open(paths.log_file, "ab") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot run {self.runtime!r}: {exc.strerror or exc}") from None
        return _Container(process, self.runtime, container_name(assignment.task_id))
