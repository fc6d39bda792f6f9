"""The task worker's settings: one typed object, filled by ``cli.py`` or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from invoker.worker.config import default_instance_id

LauncherName = Literal["exec", "docker", "podman"]
LAUNCHERS: tuple[LauncherName, ...] = ("exec", "docker", "podman")


@dataclass(frozen=True)
class TaskWorkerConfig:
    gateway: str  # HOST:WORKER_PORT (the gateway's --worker-port)
    token: str = field(repr=False)
    gpu: str
    instance_type: str
    cluster_id: str = ""
    backend: str = ""
    instance_id: str = field(default_factory=default_instance_id)
    max_tasks: int = 1
    launcher: LauncherName = "exec"
    # docker/podman: the value of --gpus (empty: no GPU flag, e.g. on a machine without GPUs).
    container_gpus: str = "all"
    work_dir: Path | None = None  # None: a temporary directory, removed on exit
    # Reference §9.5: progress that does not change for this long ERRORs the task (5 min).
    progress_stale_seconds: float = 300.0
    # How often the progress file and the results directory are read.
    poll_interval: float = 0.5
    # After percentComplete 100 the task may take this long to exit on its own.
    completion_wait: float = 30.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    tls: bool = False
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        if not self.gateway or ":" not in self.gateway:
            raise ValueError("gateway must be HOST:PORT")
        if not self.gpu or not self.instance_type:
            raise ValueError("a task worker needs --gpu and --instance-type")
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}")
        if self.progress_stale_seconds <= 0 or self.poll_interval <= 0:
            raise ValueError("progress_stale_seconds and poll_interval must be positive")
