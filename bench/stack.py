"""A real cfgate stack: ``cfgate serve`` (server cores), echo container + ``cfgate worker`` (client
cores), and a function, deployment and invoke key created through the API (``gateway.sample``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import LOOPBACK, BenchError, Proc, free_port, python, wait_port
from gateway import sample

WORKER_CONCURRENCY = 128  # credits: more than the 64 client connections, so the worker never limits


def worker_flags() -> list[str]:
    """The echo container never writes large outputs or progress files, so its worker offers no
    NVCF-LARGE-OUTPUT-DIR (``--no-large-outputs``). With CFGATE_WORKER_LARGE_OUTPUTS set (``true``:
    the default, one directory created, listed and recycled per invocation) the worker decides."""
    flags = ["--log-level", "WARNING"]
    if "CFGATE_WORKER_LARGE_OUTPUTS" not in os.environ:
        flags.append("--no-large-outputs")
    return flags


class NotAvailable(BenchError):
    """The build under test does not offer what the scenario needs."""


class Skipped(BenchError):
    """An optional peer is not installed (``rayserve`` without the ``bench-peers`` extra)."""


@dataclass
class Stack:
    gateway: Proc
    port: int
    worker_port: int
    echo_port: int
    function: sample.SampleFunction
    key: str
    procs: list[Proc] = field(default_factory=list)
    scheme: str = "http"

    @property
    def worker(self) -> Proc:
        """The worker agent (``cfgate worker``)."""
        return next(p for p in self.procs if p.name.endswith("-worker"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def start_gateway(
    name: str,
    server_cpus: set[int],
    work_dir: Path,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    grpc_port: int = 0,
) -> tuple[Proc, int, int]:
    """The gateway process, its HTTP port and its worker port (gRPC invocation on ``grpc_port``)."""
    port, worker_port = free_port(), free_port()
    argv = python("gateway", "serve", "--port", str(port), "--grpc-port", str(grpc_port))
    argv += ["--worker-port", str(worker_port)]
    argv += ["--data-dir", str(work_dir / f"{name}-data"), "--log-level", "warning", *extra]
    gateway = Proc(name, argv, server_cpus, work_dir, env=env)
    try:
        wait_port(port, gateway)
    except BenchError as exc:
        gateway.stop()
        if gateway.popen.returncode == 2:  # a SettingsError: this build refuses the configuration
            raise NotAvailable(gateway.output(400).strip().splitlines()[-1]) from exc
        raise
    return gateway, port, worker_port


def start_stack(
    name: str,
    server_cpus: set[int],
    client_cpus: set[int],
    work_dir: Path,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Stack:
    procs: list[Proc] = []
    scheme = "http"
    if tls is not None:
        extra = [*extra, "--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        scheme = "https"
    try:
        echo_port = free_port()
        echo = Proc(f"{name}-echo", python("bench.servers.echo", "--port", str(echo_port)), client_cpus, work_dir)
        procs.append(echo)
        gateway, port, worker_port = start_gateway(name, server_cpus, work_dir, extra, env)
        procs.append(gateway)
        wait_port(echo_port, echo)
        function, key = asyncio.run(_create(f"{scheme}://{LOOPBACK}:{port}", echo_port))
        worker_argv = sample.worker_command(f"{LOOPBACK}:{worker_port}", function, echo_port, WORKER_CONCURRENCY)
        worker_argv += worker_flags()
        procs.append(Proc(f"{name}-worker", worker_argv, client_cpus, work_dir, sample.worker_env(function, {})))
        asyncio.run(_wait_active(f"{scheme}://{LOOPBACK}:{port}", function))
    except BaseException:
        for proc in reversed(procs):
            proc.stop()
        raise
    return Stack(gateway, port, worker_port, echo_port, function, key, procs, scheme)


def start_grpc_stack(name: str, server_cpus: set[int], client_cpus: set[int], work_dir: Path) -> tuple[Stack, int]:
    """A gRPC function (``bench.servers.grpc_echo``) behind cfgate; the stack and its gRPC port."""
    procs: list[Proc] = []
    try:
        echo_port = free_port()
        echo = Proc(f"{name}-echo", python("bench.servers.grpc_echo", "--port", str(echo_port)), client_cpus, work_dir)
        procs.append(echo)
        grpc_port = free_port()
        gateway, port, worker_port = start_gateway(name, server_cpus, work_dir, grpc_port=grpc_port)
        procs.append(gateway)
        wait_port(echo_port, echo)
        wait_port(grpc_port, gateway)
        function, key = asyncio.run(_create(f"http://{LOOPBACK}:{port}", echo_port, "/grpc"))
        argv = sample.worker_command(f"{LOOPBACK}:{worker_port}", function, echo_port, WORKER_CONCURRENCY)
        at = argv.index("--health-url")  # an HTTP probe; the worker checks gRPC health itself
        del argv[at : at + 2]
        argv += worker_flags()
        procs.append(Proc(f"{name}-worker", argv, client_cpus, work_dir, sample.worker_env(function, {})))
        asyncio.run(_wait_active(f"http://{LOOPBACK}:{port}", function))
    except BaseException:
        for proc in reversed(procs):
            proc.stop()
        raise
    return Stack(gateway, port, worker_port, echo_port, function, key, procs), grpc_port


async def _create(base: str, echo_port: int, inference_url: str = "/echo") -> tuple[sample.SampleFunction, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30, verify=False) as http:
        token = await sample.admin_token(http)
        function = await sample.create_function(
            http, token, echo_port, inference_url=inference_url, max_concurrency=WORKER_CONCURRENCY
        )
        return function, await sample.invoke_key(http, token, "bench@cfgate.local")


async def _wait_active(base: str, function: sample.SampleFunction) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30, verify=False) as http:
        await sample.wait_active(http, function)
