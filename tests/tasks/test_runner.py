"""``TaskRun`` with the real exec launcher and real child processes, without a gateway."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import textwrap
from pathlib import Path

from invoker.worker.tasks.launcher import ExecLauncher, TaskPaths
from invoker.worker.tasks.runner import TaskRun
from protos.cfgate.worker.v1 import worker_pb2 as pb

WAIT = 15.0


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "task.py"
    path.write_text(textwrap.dedent(body))
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def make_run(tmp_path: Path, args: str, sent: list[pb.TaskWorkerMessage], **fields: object) -> TaskRun:
    assignment = pb.TaskAssignment(
        task_id="7a0e1f2d-3c4b-4a59-8d7e-6f5a4b3c2d1e",
        nca_id="n",
        name="t",
        container_args=args,
        **fields,  # type: ignore[arg-type]
    )
    return TaskRun(
        assignment, TaskPaths(tmp_path / "task"), ExecLauncher(), sent.append,
        poll_interval=0.05, stale_after=10.0, completion_wait=1.0,
    )  # fmt: skip


def final(sent: list[pb.TaskWorkerMessage]) -> pb.TaskUpdate:
    updates = [u for m in sent for u in m.updates]
    return updates[-1]


async def test_sigterm_then_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    sent: list[pb.TaskWorkerMessage] = []
    args = script(tmp_path, """
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open("pid", "w").write(str(os.getpid()))
        time.sleep(120)
    """)  # fmt: skip
    run = make_run(tmp_path, args, sent, termination_grace_ms=500)
    job = asyncio.create_task(run.run())
    pid_file = tmp_path / "task" / "pid"
    async with asyncio.timeout(WAIT):
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.02)
    run.stop("canceled")
    async with asyncio.timeout(WAIT):
        await job
    assert (final(sent).state, final(sent).message) == (pb.TASK_CANCELED, "canceled")
    try:
        os.kill(int(pid_file.read_text()), 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


async def test_exit_codes_decide_errored(tmp_path: Path) -> None:
    sent: list[pb.TaskWorkerMessage] = []
    await make_run(tmp_path, script(tmp_path, "raise SystemExit(3)"), sent).run()
    assert (final(sent).state, final(sent).message) == (pb.TASK_ERRORED, "exited with code 3")
    sent.clear()
    await make_run(tmp_path, script(tmp_path, "pass"), sent).run()
    assert final(sent).state == pb.TASK_ERRORED
    assert final(sent).message == "exited with code 0 at 0% (never reported 100%)"


async def test_nothing_to_run_is_a_launch_failure(tmp_path: Path) -> None:
    sent: list[pb.TaskWorkerMessage] = []
    await make_run(tmp_path, "", sent).run()
    assert final(sent).state == pb.TASK_ERRORED
    assert final(sent).message == "launch failed: containerArgs is empty: the exec launcher has nothing to run"
    sent.clear()
    await make_run(tmp_path, "/nonexistent/program --flag", sent).run()
    assert final(sent).state == pb.TASK_ERRORED and final(sent).message.startswith("launch failed: cannot run")


async def test_the_task_does_not_inherit_the_worker_environment(tmp_path: Path) -> None:
    os.environ["CFGATE_WORKER_TOKEN"] = "worker-secret"
    try:
        sent: list[pb.TaskWorkerMessage] = []
        args = script(tmp_path, """
            import json, os
            json.dump(sorted(os.environ), open(os.environ["NVCT_RESULTS_DIR"] + "/env.json", "w"))
            json.dump({"percentComplete": 100}, open(os.environ["NVCT_PROGRESS_FILE_PATH"], "w"))
        """)  # fmt: skip
        await make_run(tmp_path, args, sent, environment={"A": "1"}).run()
    finally:
        del os.environ["CFGATE_WORKER_TOKEN"]
    assert final(sent).state == pb.TASK_COMPLETED
    names = set((tmp_path / "task" / "results" / "env.json").read_text().strip("[]").replace('"', "").split(", "))
    assert "CFGATE_WORKER_TOKEN" not in names and {"A", "NVCT_TASK_ID", "NVCT_RESULTS_DIR"} <= names
    assert [r.name for m in sent for r in m.results] == ["env.json"]
