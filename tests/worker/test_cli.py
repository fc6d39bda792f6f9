"""The worker's command line: flags and environment, and the real process draining on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from invoker.worker.cli import build_parser, config_from_args, main
from tests.support.echo_server import EchoServer
from tests.worker.conftest import FUNCTION_ID, TOKEN, WAIT, GatewayDouble, invocation

ROOT = Path(__file__).resolve().parents[2]


def test_flags_come_from_the_environment_and_the_command_line_wins() -> None:
    env = {
        "CFGATE_WORKER_GATEWAY": "gw:10082",
        "CFGATE_WORKER_TOKEN": "tok-3c9e",
        "CFGATE_WORKER_FUNCTION_ID": "fid",
        "CFGATE_WORKER_MAX_CONCURRENCY": "8",
        "CFGATE_WORKER_LABEL": "a=1,b=2",
        "CFGATE_WORKER_TLS": "true",
        "CFGATE_WORKER_WORK_DIR": "/tmp/w",
        "CFGATE_WORKER_LARGE_OUTPUTS": "false",
        "CFGATE_WORKER_SECRETS_FILE": "/var/secrets/secrets.json",
    }
    args = build_parser(env).parse_args(["--function-id", "other", "--inference-url", "http://127.0.0.1:9000/v1"])
    config = config_from_args(args)
    assert (config.gateway, config.token, config.function_id) == ("gw:10082", "tok-3c9e", "other")
    assert config.max_concurrency == 8
    assert config.labels == {"a": "1", "b": "2"}
    assert config.tls is True
    assert config.work_dir == Path("/tmp/w")
    assert config.large_outputs is False
    assert config.secrets_file == Path("/var/secrets/secrets.json")
    assert config_from_args(
        build_parser({}).parse_args(["--gateway", "g:1", "--token", "t", "--function-id", "f"])
    ).large_outputs
    assert not config_from_args(
        build_parser({}).parse_args(["--gateway", "g:1", "--token", "t", "--function-id", "f", "--no-large-outputs"])
    ).large_outputs
    assert config.inference.port == 9000 and config.inference.path == "/v1"
    assert config.grace_period == 30.0
    assert "tok-3c9e" not in repr(config)


def test_missing_required_flags_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser({}).parse_args(["--gateway", "gw:1"])
    assert exit_info.value.code == 2
    assert "--token" in capsys.readouterr().err


def test_exits_1_when_the_container_never_becomes_ready() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["--gateway", "127.0.0.1:1", "--token", "t", "--function-id", "f"]
    argv += ["--inference-url", f"http://127.0.0.1:{port}", "--ready-timeout", "0.3"]
    assert main(argv) == 1


async def test_process_drains_on_sigterm_and_exits_0(
    gateway_double: GatewayDouble, echo: EchoServer, tmp_path: Path
) -> None:
    env = dict(os.environ)
    env.update(
        {
            "CFGATE_WORKER_GATEWAY": gateway_double.target,
            "CFGATE_WORKER_TOKEN": TOKEN,
            "CFGATE_WORKER_FUNCTION_ID": FUNCTION_ID,
            "PYTHONPATH": str(ROOT),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "invoker.worker",
        "--inference-url",
        f"{echo.url}/echo",
        "--health-url",
        f"{echo.url}/health",
        "--max-concurrency",
        "2",
        "--work-dir",
        str(tmp_path / "work"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        session = await gateway_double.session(timeout=WAIT)
        await session.wait_for(lambda: session.credits == 2)
        rid = "5d6e7f80-0000-4000-8000-000000000001"
        session.invoke(invocation(rid, "/slow?gate=term", compat=True))
        await echo.wait_for(lambda stats: rid in stats.active)

        process.send_signal(signal.SIGTERM)
        await session.wait_for(lambda: any(m.draining for m in session.messages))
        assert process.returncode is None
        assert not session.ended(rid)

        echo.release("term")
        result = await session.wait_end(rid)
        assert (result.status, result.error) == (200, "")
        async with asyncio.timeout(WAIT):
            output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        assert session.worker_closed
        assert TOKEN not in output.decode()
        assert b"drained" in output
    finally:
        if process.returncode is None:
            process.kill()
            leftover, _ = await process.communicate()
            print(leftover.decode())


def test_the_worker_does_not_import_the_gateway() -> None:
    code = (
        "import sys, invoker.worker.cli, invoker.worker.agent;"
        "bad = sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
