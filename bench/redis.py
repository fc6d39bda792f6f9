"""A throwaway redis-server for the Redis scenarios, and the check that the build really uses it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import tools
from bench.procs import LOOPBACK, Proc, free_port, wait_port
from bench.stack import NotAvailable


@dataclass
class RedisServer:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"


def start(cpus: set[int], work_dir: Path, name: str) -> RedisServer:
    binary = tools.which("redis-server")
    if binary is None:
        raise NotAvailable("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    argv = [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = Proc(f"{name}-redis", argv + ["--dir", str(work_dir)], cpus, work_dir)
    wait_port(port, proc)
    return RedisServer(proc, port)


def require_streams(server: RedisServer, scenario: str) -> None:
    """After the warm-up, invocations must have gone through Redis Streams (XADD), else this
    build ignores ``--redis`` for queues: the scenario is not available yet."""
    cli = tools.which("redis-cli")
    if cli is None:
        return
    done = subprocess.run(
        [cli, "-h", LOOPBACK, "-p", str(server.port), "INFO", "commandstats"], capture_output=True, text=True
    )
    if "cmdstat_xadd" not in done.stdout:
        raise NotAvailable(f"{scenario}: this build does not queue invocations in Redis (no XADD after the warm-up)")
