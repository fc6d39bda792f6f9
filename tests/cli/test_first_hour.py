"""What tripped a new user in the first hour (issue 17 item 5), each as a real process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ROOT, clean_env, wait_healthy
from tests.servers import find_free_port


def test_ctrl_c_on_serve_ends_cleanly_with_130_and_the_banner_names_both_grpc_ports(tmp_path: Path) -> None:
    port, grpc_port, worker_port = find_free_port(), find_free_port(), find_free_port()
    argv = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--grpc-port", str(grpc_port)]
    argv += ["--worker-port", str(worker_port)]
    proc = subprocess.Popen(
        [*argv, "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "Application shutdown complete" in err
    banner = (
        f"cfgate: serving http://127.0.0.1:{port}, gRPC invocation on port {grpc_port}, workers on port {worker_port} "
    )
    assert banner in out
    assert f"cfgate init --gateway http://127.0.0.1:{port}" in out


def test_demo_with_its_grpc_port_taken_says_to_use_a_free_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = taken.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "gateway", "demo", "--once", "--port", "0"),
                *("--grpc-port", str(grpc_port), "--worker-port", "0"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env({"TMPDIR": str(tmp_path)}),
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"cfgate demo: gRPC port {grpc_port} is in use: pass --grpc-port 0 to use any free port"
    ]
    assert list(tmp_path.glob("cfgate-demo-*")) == []


def test_demo_with_its_worker_port_taken_says_to_use_a_free_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        worker_port = taken.getsockname()[1]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "gateway", "demo", "--once", "--port", "0"),
                *("--grpc-port", "0", "--worker-port", str(worker_port)),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env({"TMPDIR": str(tmp_path)}),
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"cfgate demo: worker port {worker_port} is in use: pass --worker-port 0 to use any free port"
    ]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_demo_keeps_the_admin_token_off_command_lines_and_cleans_up_on_ctrl_c(tmp_path: Path) -> None:
    with (tmp_path / "demo.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "demo", "--port", "0", "--grpc-port", "0", "--worker-port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=clean_env({"TMPDIR": str(tmp_path)}),
            cwd=ROOT,
        )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "running until Ctrl-C" in line:
                break
        assert any("invocation answered 200" in line for line in lines), "".join(lines)
        assert len(list(tmp_path.glob("cfgate-demo-*"))) == 1
        workers = [p for p in _children(proc.pid) if b"invoker.worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 1
        argv = Path(f"/proc/{workers[0]}/cmdline").read_bytes().split(b"\0")
        assert b"--token" not in argv
        assert not [a for a in argv if re.match(rb"^eyJ[\w-]+\.[\w-]+\.", a)]  # no JWT at all
        assert b"CFGATE_WORKER_TOKEN=eyJ" in Path(f"/proc/{workers[0]}/environ").read_bytes()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "demo.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
    assert list(tmp_path.glob("cfgate-demo-*")) == []


def test_worker_help_shows_the_task_worker_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "worker", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0
    assert re.search(r"^\s+--tasks\s+run NVCT tasks instead", done.stdout, re.MULTILINE), done.stdout


def test_top_level_help_lists_every_command_group_without_raw_markup() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0
    for markup in ("``", "[bold", "\x1b[", ":class:", "\\b"):
        assert markup not in done.stdout
    for command in ("serve", "worker", "demo", "init", "api-key", "function", "queue", "task", "cluster"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.MULTILINE), command
    assert os.linesep + "Run cfgate:" in done.stdout
