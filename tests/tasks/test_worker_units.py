"""Task worker pieces without a gateway: the container command line, progress and result reading, flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invoker.worker.tasks.cli import build_parser, config_from_args
from invoker.worker.tasks.launcher import LaunchError, TaskPaths, container_command, task_environment
from invoker.worker.tasks.progress import ResultScanner, read_progress
from protos.cfgate.worker.v1 import worker_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
TASK_ID = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"


def assignment(**fields: object) -> pb.TaskAssignment:
    values: dict[str, object] = {
        "task_id": TASK_ID,
        "nca_id": "nca-1",
        "name": "train",
        "container_image": "nvcr.io/example/trainer:1.0",
        "container_args": "python train.py --lr '0.1 0.2'",
        "environment": {"MODE": "fast", "NVCT_TASK_ID": "spoofed"},
        "secrets_json": b'{"HF_TOKEN": "top-secret"}',
    }
    values.update(fields)
    return pb.TaskAssignment(**values)  # type: ignore[arg-type]


def test_container_command_mounts_the_contract_paths_and_names_variables_only(tmp_path: Path) -> None:
    paths = TaskPaths(tmp_path / TASK_ID)
    command = container_command("docker", assignment(), paths, "all")
    assert command == [
        "docker", "run", "--rm", "--name", f"cfgate-task-{TASK_ID}", "--init", "--gpus", "all",
        "-v", f"{paths.results}:/var/nvct/results",
        "-v", f"{paths.progress_dir}:/var/nvct/progress",
        "-v", f"{paths.secrets_dir}:/var/secrets:ro",
        "-e", "MODE", "-e", "NVCT_NCA_ID", "-e", "NVCT_PROGRESS_FILE_PATH", "-e", "NVCT_RESULTS_DIR",
        "-e", "NVCT_SECRETS_PATH", "-e", "NVCT_TASK_ID", "-e", "NVCT_TASK_NAME",
        "nvcr.io/example/trainer:1.0", "python", "train.py", "--lr", "0.1 0.2",
    ]  # fmt: skip
    assert not any("top-secret" in part or "fast" in part for part in command)
    podman = container_command("podman", assignment(container_args=""), paths, "")
    assert podman[:6] == ["podman", "run", "--rm", "--name", f"cfgate-task-{TASK_ID}", "--init"]
    assert "--gpus" not in podman and podman[-1] == "nvcr.io/example/trainer:1.0"


def test_container_command_needs_an_image(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="containerImage"):
        container_command("docker", assignment(container_image=""), TaskPaths(tmp_path), "all")


def test_nvct_variables_win_over_the_task_environment() -> None:
    env = task_environment(assignment(), progress_file="/p/progress.json", results_dir="/r", secrets_file="/s")
    assert env == {
        "MODE": "fast",
        "NVCT_TASK_ID": TASK_ID,
        "NVCT_TASK_NAME": "train",
        "NVCT_NCA_ID": "nca-1",
        "NVCT_PROGRESS_FILE_PATH": "/p/progress.json",
        "NVCT_RESULTS_DIR": "/r",
        "NVCT_SECRETS_PATH": "/s",
    }


def test_secrets_file_is_private(tmp_path: Path) -> None:
    paths = TaskPaths(tmp_path / TASK_ID)
    paths.create(b'{"A": "1"}')
    assert json.loads(paths.secrets_file.read_text()) == {"A": "1"}
    assert paths.secrets_file.stat().st_mode & 0o777 == 0o600
    assert paths.secrets_dir.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"percentComplete": 42, "lastUpdatedAt": "2026-01-02T03:04:05.123456789Z"}', (42, 1767323045123)),
        (b'{"percentComplete": 100}', (100, 0)),
        (b'{"percentComplete": 250, "lastUpdatedAt": "garbage"}', (100, 0)),
        (b'{"percentComplete": 7.9, "lastUpdatedAt": "2026-01-02T03:04:05+01:00"}', (7, 1767319445000)),
        (b'{"percentComplete": "50"}', None),
        (b'{"percentComplete": true}', None),
        (b'{"percentComp', None),
        (b"[1, 2]", None),
    ],
)
def test_read_progress(tmp_path: Path, content: bytes, expected: tuple[int, int] | None) -> None:
    path = tmp_path / "progress.json"
    path.write_bytes(content)
    progress = read_progress(path)
    assert (None if progress is None else (progress.percent, progress.last_updated_ms)) == expected


def test_missing_progress_file_is_no_news(tmp_path: Path) -> None:
    assert read_progress(tmp_path / "absent.json") is None


def test_results_are_reported_once_they_are_stable_and_all_at_the_end(tmp_path: Path) -> None:
    scanner = ResultScanner(tmp_path)
    (tmp_path / "a.txt").write_bytes(b"abc")
    assert scanner.scan() == []  # seen once: may still be written
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"12")
    stable = scanner.scan()
    assert [name for name, _ in stable] == ["a.txt"]
    assert stable[0][1] == {
        "sizeBytes": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }
    with open(tmp_path / "sub" / "b.bin", "ab") as handle:
        handle.write(b"3")
    assert scanner.scan() == []  # it changed since the last scan
    final = scanner.scan(final=True)
    assert [(name, meta["sizeBytes"]) for name, meta in final] == [("sub/b.bin", 3)]
    assert scanner.scan(final=True) == []


def test_tasks_flags_and_environment() -> None:
    env = {"CFGATE_WORKER_TOKEN": "tok", "CFGATE_WORKER_GPU": "H100", "CFGATE_WORKER_MAX_TASKS": "3"}
    args = build_parser(env).parse_args(
        ["--tasks", "--gateway", "gw:10082", "--instance-type", "NCP.GPU.H100_1x", "--launcher", "podman"]
    )
    config = config_from_args(args)
    assert (config.gateway, config.token, config.gpu, config.instance_type) == (
        "gw:10082",
        "tok",
        "H100",
        "NCP.GPU.H100_1x",
    )
    assert (config.max_tasks, config.launcher, config.progress_stale_seconds) == (3, "podman", 300.0)
    assert "tok" not in repr(config)


def test_tasks_flags_refuse_an_unknown_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--gateway", "g:1", "--token", "t", "--gpu", "H100", "--instance-type", "x", "--launcher", "kubectl"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser({}).parse_args(argv)
    assert exit_info.value.code == 2
    assert "--launcher" in capsys.readouterr().err


def test_the_task_worker_does_not_import_the_gateway() -> None:
    code = (
        "import sys, invoker.worker.cli, invoker.worker.tasks.cli, invoker.worker.tasks.agent;"
        "bad = sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
