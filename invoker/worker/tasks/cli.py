"""``cfgate worker --tasks``: the NVCT task worker.

Every flag can also come from the environment as ``CFGATE_WORKER_<NAME>`` (``--instance-type`` →
``CFGATE_WORKER_INSTANCE_TYPE``); a flag on the command line wins. Prefer the environment for the
token: command lines are visible to every local user.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invoker.logs import register_secret
from invoker.worker.config import default_instance_id
from invoker.worker.process import configure_logging, run_agent
from invoker.worker.tasks.agent import TaskWorkerAgent
from invoker.worker.tasks.config import LAUNCHERS, TaskWorkerConfig

__all__ = ["build_parser", "config_from_args", "main"]

ENV_PREFIX = "CFGATE_WORKER_"


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    environ = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="cfgate worker --tasks",
        description="Attach to a cfgate gateway over gRPC and run NVCT tasks that match this worker's GPU.",
    )
    parser.add_argument("--tasks", action="store_true", help="run tasks (not invocations)")

    def add(flag: str, *, required: bool = False, default: Any = None, **kwargs: Any) -> None:
        name = ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")
        value = environ.get(name)
        if value:
            default, required = value, False
        help_text = kwargs.pop("help", "")
        parser.add_argument(flag, required=required, default=default, help=f"{help_text} [env {name}]", **kwargs)

    add(
        "--gateway",
        required=True,
        metavar="HOST:WORKER_PORT",
        help="the gateway's worker endpoint (its --worker-port, default 10082)",
    )
    add("--token", required=True, help="admin token or cluster credential")
    add("--gpu", required=True, help="the GPU this worker offers (matched against gpuSpecification.gpu)")
    add("--instance-type", required=True, help="matched against gpuSpecification.instanceType")
    add("--cluster-id", default="", help="this worker's cluster (matched against gpuSpecification.clusters)")
    add("--backend", default="", help="reported to the gateway")
    add("--max-tasks", type=int, default=1, metavar="N", help="tasks run at once")
    add("--launcher", default="exec", choices=LAUNCHERS, help="exec: containerArgs as a local command")
    add("--container-gpus", default="all", help="docker/podman --gpus value ('' for none)")
    add("--work-dir", default=None, metavar="DIR", help="task directories (default: a temp dir)")
    add("--instance-id", default=None, metavar="ID", help="default: host-pid-random")
    add("--progress-stale-seconds", type=float, default=300.0, metavar="S", help="stale progress → ERRORED")
    add("--poll-interval", type=float, default=0.5, metavar="S", help="how often progress and results are read")
    add("--tls", action=argparse.BooleanOptionalAction, default=False, help="TLS to the gateway")
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add("--log-format", default="text", choices=["text", "json"], help="log lines as text or JSON")
    return parser


def config_from_args(args: argparse.Namespace) -> TaskWorkerConfig:
    tls = args.tls.strip().lower() in ("1", "true", "yes", "on") if isinstance(args.tls, str) else bool(args.tls)
    return TaskWorkerConfig(
        gateway=args.gateway,
        token=args.token,
        gpu=args.gpu,
        instance_type=args.instance_type,
        cluster_id=args.cluster_id,
        backend=args.backend,
        instance_id=args.instance_id or default_instance_id(),
        max_tasks=int(args.max_tasks),
        launcher=args.launcher,
        container_gpus=args.container_gpus,
        work_dir=Path(args.work_dir) if args.work_dir else None,
        progress_stale_seconds=float(args.progress_stale_seconds),
        poll_interval=float(args.poll_interval),
        tls=tls,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(str(args.log_level), str(args.log_format))
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    register_secret(config.token)
    return asyncio.run(run_agent(lambda: TaskWorkerAgent(config)))
