"""``cfgate worker`` / ``python -m invoker.worker``: run the worker agent beside an inference container.

Every flag can also come from the environment as ``CFGATE_WORKER_<NAME>`` (``--function-id`` →
``CFGATE_WORKER_FUNCTION_ID``); a flag on the command line wins. Prefer the environment for the
token: command lines are visible to every local user. ``--label`` takes ``key=value`` and repeats;
its variable holds comma-separated pairs.

SIGTERM or SIGINT drains (finish in-flight work within ``--grace-period``, then exit 0); a second
signal stops waiting for in-flight work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from invoker.logs import register_secret
from invoker.worker.agent import WorkerAgent
from invoker.worker.config import WorkerConfig, default_instance_id
from invoker.worker.process import configure_logging, run_agent

__all__ = ["build_parser", "config_from_args", "main"]

ENV_PREFIX = "CFGATE_WORKER_"


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    environ = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="cfgate worker",
        description="Attach to a cfgate gateway over gRPC and serve invocations by calling the inference container.",
    )

    def add(flag: str, *, required: bool = False, default: Any = None, **kwargs: Any) -> None:
        name = _env_name(flag)
        value = environ.get(name)
        if value is not None and value != "":
            default = value.split(",") if kwargs.get("action") == "append" else value
            required = False
        help_text = kwargs.pop("help", "")
        parser.add_argument(flag, required=required, default=default, help=f"{help_text} [env {name}]", **kwargs)

    # Dispatched in main() before parsing; listed here so --help shows the task worker exists.
    parser.add_argument(
        "--tasks",
        action="store_true",
        help="run NVCT tasks instead (see cfgate worker --tasks --help) [env CFGATE_WORKER_TASKS]",
    )
    add(
        "--gateway",
        required=True,
        metavar="HOST:WORKER_PORT",
        help="the gateway's worker endpoint (its --worker-port, default 10082)",
    )
    add("--token", required=True, help="admin token or worker credential")
    add("--function-id", required=True, metavar="FID")
    add("--version-id", default="", metavar="VID", help="default: the newest deployed version")
    add("--inference-url", default="http://127.0.0.1:8000", help="the container's HTTP address")
    add("--health-url", default=None, help="ready when GET answers 200 (default: when the port accepts)")
    add("--max-concurrency", type=int, default=1, metavar="N", help="invocations served at once")
    add("--work-dir", default=None, metavar="DIR", help="input assets and large outputs (default: a temp dir)")
    add("--instance-id", default=None, metavar="ID", help="default: host-pid-random")
    add("--grace-period", type=float, default=30.0, metavar="SECONDS", help="time in-flight work gets on drain")
    add("--ready-timeout", type=float, default=1800.0, metavar="SECONDS", help="how long to wait for the container")
    add("--keepalive-ms", type=int, default=0, metavar="MS", help="gRPC keepalive ping interval (0: off)")
    add("--tls", action=argparse.BooleanOptionalAction, default=False, help="TLS to the gateway")
    add(
        "--large-outputs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer NVCF-LARGE-OUTPUT-DIR (large outputs, progress); off when the container never writes one",
    )
    add(
        "--secrets-file",
        default=None,
        metavar="PATH",
        help="write the version's secrets here for the container (NVCF: /var/secrets/secrets.json); "
        "kept up to date, 0600",
    )
    add("--metrics-port", type=int, default=None, metavar="PORT", help="serve Prometheus /metrics here (default: off)")
    add("--metrics-host", default="127.0.0.1", metavar="HOST", help="address of --metrics-port")
    add("--gpu", default="", help="reported to the gateway")
    add("--instance-type", default="", help="reported; default NVCF-INSTANCETYPE")
    add("--backend", default="", help="reported; default NVCF-BACKEND")
    add("--location", default="", help="reported; default NVCF-REGION")
    add("--cluster-id", default="", help="reported to the gateway")
    add("--label", action="append", default=None, metavar="KEY=VALUE", help="reported label (repeatable)")
    add("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add("--log-format", default="text", choices=["text", "json"], help="log lines as text or JSON")
    return parser


def _labels(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    items = [raw] if isinstance(raw, str) else list(raw)
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label {item!r} is not KEY=VALUE")
        labels[key.strip()] = value.strip()
    return labels


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    return WorkerConfig(
        gateway=args.gateway,
        token=args.token,
        function_id=args.function_id,
        version_id=args.version_id or "",
        inference_url=args.inference_url,
        health_url=args.health_url or None,
        max_concurrency=int(args.max_concurrency),
        work_dir=Path(args.work_dir) if args.work_dir else None,
        instance_id=args.instance_id or default_instance_id(),
        grace_period=float(args.grace_period),
        ready_timeout=float(args.ready_timeout),
        keepalive_ms=int(args.keepalive_ms),
        tls=_flag(args.tls),
        large_outputs=_flag(args.large_outputs),
        secrets_file=Path(args.secrets_file) if args.secrets_file else None,
        metrics_port=None if args.metrics_port in (None, "") else int(args.metrics_port),
        metrics_host=args.metrics_host,
        gpu=args.gpu,
        instance_type=args.instance_type,
        backend=args.backend,
        location=args.location,
        cluster_id=args.cluster_id,
        labels=_labels(args.label),
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--tasks" in arguments or _flag(os.environ.get(ENV_PREFIX + "TASKS", "")):
        from invoker.worker.tasks.cli import main as tasks_main

        return tasks_main(arguments)
    parser = build_parser()
    args = parser.parse_args(arguments)
    configure_logging(str(args.log_level), str(args.log_format))
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    register_secret(config.token)
    runner: Callable[..., int] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    return runner(run_agent(lambda: WorkerAgent(config)))


if __name__ == "__main__":
    sys.exit(main())
