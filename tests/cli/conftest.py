"""The CLI as users run it: ``python -m gateway ...`` subprocesses against a real ``cfgate serve``
process (and, for invocations, a real echo container and real worker agents)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import find_free_port

ROOT = Path(__file__).resolve().parents[2]


# Kept from the test run's environment: which twin of the hot path the processes run.
_KEPT = frozenset({"CFGATE_NO_EXTENSIONS"})


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without cfgate settings or NVCF credentials that would steer the CLI."""
    env = {k: v for k, v in os.environ.items() if k in _KEPT or not k.startswith(("CFGATE_", "NVCF_"))}
    return {**env, "PYTHONPATH": str(ROOT), **(extra or {})}


def wait_healthy(url: str, proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: process exited early with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@dataclass
class CliGateway:
    """A ``cfgate serve`` process, and the CLI pointed at it through its own state file."""

    base: str
    worker_port: int
    state_file: Path
    work: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> Ran:
        argv = [sys.executable, "-m", "gateway", "--state-file", str(self.state_file), *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=clean_env(env), cwd=self.work)
        return Ran(done.returncode, done.stdout, done.stderr)

    def cli_background(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "gateway", "--state-file", str(self.state_file), *args]
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=self.work
        )

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None, name: str = "proc") -> None:
        with (self.work / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=clean_env(env), cwd=self.work)
        self.procs.append(proc)

    def start_worker(
        self,
        function_id: str,
        container: str,
        admin_token: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        argv = [
            sys.executable, "-m", "gateway", "worker",
            "--gateway", f"127.0.0.1:{self.worker_port}",
            "--function-id", function_id,
            "--inference-url", container,
            "--health-url", container + "/health",
            "--max-concurrency", "4",
            "--log-level", "WARNING", *extra,
        ]  # fmt: skip
        self.start(argv, {"CFGATE_WORKER_TOKEN": admin_token, **(env or {})}, f"worker-{function_id[:8]}")


def start_gateway(
    work: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[CliGateway, subprocess.Popen[bytes]]:
    port, worker_port = find_free_port(), find_free_port()
    argv = [
        sys.executable, "-m", "gateway", "serve",
        "--port", str(port), "--grpc-port", "0", "--worker-port", str(worker_port),
        "--data-dir", str(work / "data"), *extra,
    ]  # fmt: skip
    with (work / "gateway.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=clean_env(env), cwd=work)
    gateway = CliGateway(f"http://127.0.0.1:{port}", worker_port, work / "state" / "cli.state", work)
    wait_healthy(gateway.base + "/health", proc)
    return gateway, proc


def stop(procs: Sequence[subprocess.Popen[Any]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cli_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliGateway]:
    """One gateway process per test module, with ``cfgate init`` already run against it."""
    work = tmp_path_factory.mktemp("cli")
    gateway, proc = start_gateway(work)
    try:
        ran = gateway.cli("init", "--gateway", gateway.base)
        assert ran.code == 0, ran.err
        yield gateway
    finally:
        stop([*gateway.procs, proc])


@pytest.fixture(scope="module")
def echo_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test echo server as the functions' container (``/progress``, ``/files``, ``/echo``)."""
    port = find_free_port()
    work = tmp_path_factory.mktemp("echo")
    argv = [sys.executable, "-m", "tests.support.echo_server", "--port", str(port)]
    with (work / "echo.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", proc)
        yield url
    finally:
        stop([proc])


def state_of(gateway: CliGateway) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(gateway.state_file.read_text())
    return value
