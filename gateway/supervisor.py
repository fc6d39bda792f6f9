"""``cfgate serve --processes N``: N gateway processes on one host sharing the HTTP, gRPC and worker ports.

The parent never serves and never starts grpc: it reserves the ports (a bound, not listening,
SO_REUSEPORT socket each, which also resolves port 0), migrates the store and creates (or
imports) the installation's keys in it once so the children do not race to create them, then
starts each child as a fresh interpreter (``python -m gateway serve`` with the settings in
``CFGATE_*`` variables, never a fork) that binds the same ports with SO_REUSEPORT; the kernel
spreads connections among them (grpc sets SO_REUSEPORT on its listeners by default). Each child
applies pending migrations under the store's lock, so whichever comes first migrates and the
others find nothing to do.

Metrics (``--metrics-port``): the parent serves the host's ``/metrics``, the sum of what each
child serves on a Unix socket in a private directory made for the run (``gateway.metrics.aggregate``).

Supervision: SIGTERM or SIGINT stops every child gracefully (SIGTERM, then SIGKILL after the
grace period) and the parent exits 0. A child that dies on its own is restarted after a second;
more than ``MAX_RESTARTS`` restarts within ``RESTART_WINDOW_SECONDS`` means something is wrong
for all of them (bad database, port taken), so the parent stops the others and exits 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from gateway.auth.installation import prepare_installation_keys
from gateway.private_files import make_private_dir
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.metrics.aggregate import HostMetricsServer

log = logging.getLogger("gateway.supervisor")

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0
STOP_GRACE_SECONDS = 25.0
POLL_SECONDS = 0.2


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT (not listening)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._children: list[subprocess.Popen[bytes] | None] = []
        self._restarts: deque[float] = deque()
        self._stopping = False
        self._env: dict[str, str] = {}
        self._metrics_dir: Path | None = None

    def run(self) -> int:
        settings = self.settings
        try:
            http = reuse_port_socket(settings.host, settings.port)
            grpc = reuse_port_socket(settings.host, settings.grpc_port)
            workers = reuse_port_socket(settings.host, settings.worker_port)
        except OSError as exc:
            ports = f"{settings.port}/{settings.grpc_port}/{settings.worker_port}"
            print(f"cfgate: cannot bind {settings.host}:{ports}: {exc}", file=sys.stderr)
            return 1
        metrics = None
        try:
            self._prepare_data_dir()
            port, grpc_port, worker_port = (s.getsockname()[1] for s in (http, grpc, workers))
            child = Settings.load(
                {"port": port, "grpc_port": grpc_port, "worker_port": worker_port, "processes": 1, "reuse_port": True},
                env=settings.environment(),
            )
            # OpenTelemetry's standard variables reach the children too (invoker.tracing).
            self._env = {**{k: v for k, v in os.environ.items() if k.startswith("OTEL_")}, **child.environment()}
            self._env.pop("CFGATE_METRICS_PORT", None)
            try:
                metrics = self._start_metrics()
            except OSError as exc:
                print(f"cfgate: cannot serve metrics on port {settings.metrics_port}: {exc}", file=sys.stderr)
                return 1
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._stop)
            print(
                f"cfgate: {settings.processes} gateway processes on http port {port}, grpc port {grpc_port}, "
                f"worker port {worker_port}",
                flush=True,
            )
            self._children = [self._spawn(index) for index in range(settings.processes)]
            return self._supervise()
        finally:
            self._terminate()
            http.close()
            grpc.close()
            workers.close()
            if metrics is not None:
                metrics.stop()
            if self._metrics_dir is not None:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _prepare_data_dir(self) -> None:
        settings = self.settings
        make_private_dir(settings.data_dir)
        # The children then find the store migrated and its keys in place, and agree on them.
        asyncio.run(prepare_installation_keys(settings))

    def _start_metrics(self) -> HostMetricsServer | None:
        settings = self.settings
        if settings.metrics_port is None:
            return None
        from gateway.metrics.aggregate import HostMetricsServer

        self._metrics_dir = Path(tempfile.mkdtemp(prefix="cfgate-metrics-"))  # 0700
        server = HostMetricsServer(settings.host, settings.metrics_port, self._metric_sockets())
        server.start()
        print(f"cfgate: metrics of all {settings.processes} processes on port {server.port}", flush=True)
        return server

    def _metric_sockets(self) -> list[str]:
        assert self._metrics_dir is not None
        return [str(self._metrics_dir / f"child-{index}.sock") for index in range(self.settings.processes)]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = self._env
        if self._metrics_dir is not None:
            env = {**env, "CFGATE_METRICS_SOCKET": self._metric_sockets()[index]}
        return subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _supervise(self) -> int:
        while not self._stopping:
            time.sleep(POLL_SECONDS)
            for index, child in enumerate(self._children):
                if self._stopping or child is None or child.poll() is None:
                    continue
                now = time.monotonic()
                self._restarts.append(now)
                while self._restarts and self._restarts[0] < now - RESTART_WINDOW_SECONDS:
                    self._restarts.popleft()
                if len(self._restarts) > MAX_RESTARTS:
                    print(f"cfgate: gateway processes keep dying (last exit {child.returncode}): stopping", flush=True)
                    return 1
                print(f"cfgate: gateway process {child.pid} exited with {child.returncode}: restarting", flush=True)
                time.sleep(RESTART_DELAY_SECONDS)
                self._children[index] = self._spawn(index)
        return 0

    def _terminate(self) -> None:
        live = [c for c in self._children if c is not None and c.poll() is None]
        for child in live:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in live:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
