"""End to end: a real gateway, a real ``cfgate worker --tasks`` process, tasks run by the exec launcher.

Each task is a small Python script (``scripts.py``) that follows the container contract of
reference §9.5: progress file, results directory, NVCT_* environment, secrets file.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from gateway.app import Gateway
from gateway.server import uvicorn_config
from tests.conftest import make_settings
from tests.servers import find_free_port
from tests.tasks import scripts
from tests.tasks.conftest import Headers, bearer, make_task_key, task_body

ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0
STALE_SECONDS = 2.0
SECRET = "hf-e2e-secret-value"
FINAL = {"ERRORED", "CANCELED", "EXCEEDED_MAX_RUNTIME_DURATION", "EXCEEDED_MAX_QUEUED_DURATION", "COMPLETED"}


@dataclass
class Live:
    gateway: Gateway
    base: str
    grpc_target: str
    admin_token: str
    key: Headers
    tasks: httpx.AsyncClient

    async def create(self, script: Path, **overrides: Any) -> str:
        body = task_body(containerArgs=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", **overrides)
        response = await self.tasks.post("/v1/nvct/tasks", json=body, headers=self.key)
        assert response.status_code == 200, response.text
        return str(response.json()["task"]["id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.tasks.get(f"/v1/nvct/tasks/{task_id}", headers=self.key)
        assert response.status_code == 200, response.text
        dto: dict[str, Any] = response.json()["task"]
        return dto

    async def wait_status(self, task_id: str, wanted: set[str]) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                dto = await self.task(task_id)
                if dto["status"] in wanted:
                    return dto
                assert dto["status"] not in FINAL, dto
                await asyncio.sleep(0.1)

    async def listing(self, task_id: str, kind: str) -> list[dict[str, Any]]:
        response = await self.tasks.get(f"/v1/nvct/tasks/{task_id}/{kind}?limit=100", headers=self.key)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()[kind]
        return items


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    port = find_free_port()
    settings = make_settings(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}",
        port=port,
        worker_port=find_free_port(),
        task_tick_ms=200,
    )
    config = uvicorn_config(settings)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    gateway = config.app
    assert isinstance(gateway, Gateway)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"Host": "api-keys.localhost"}) as keys:
        token = (await keys.post("/v1/admin/keys")).json()["value"]
        key = bearer(await make_task_key(keys, token))
    async with httpx.AsyncClient(base_url=base, headers={"Host": "tasks.localhost"}, timeout=30) as tasks:
        try:
            yield Live(gateway, base, f"127.0.0.1:{gateway.worker_port}", token, key, tasks)
        finally:
            server.should_exit = True
            await serving


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    work_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


StartWorker = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(live: Live, tmp_path: Path) -> AsyncIterator[StartWorker]:
    started: list[Worker] = []

    async def start(token: str | None = None, gpu: str = "H100") -> Worker:
        work_dir = tmp_path / f"worker-{len(started)}"
        log = tmp_path / f"worker-{len(started)}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CFGATE_WORKER_TOKEN": token or live.admin_token}
        argv = ["--tasks", "--gateway", live.grpc_target, "--gpu", gpu, "--instance-type", "NCP.GPU.H100_1x"]
        argv += ["--work-dir", str(work_dir), "--progress-stale-seconds", str(STALE_SECONDS), "--poll-interval", "0.1"]
        argv += ["--instance-id", f"e2e-{len(started)}", "--log-level", "DEBUG"]
        with open(log, "wb") as handle:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "worker", *argv, cwd=ROOT, env=env, stdout=handle, stderr=handle
            )
        worker = Worker(process, work_dir, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.returncode is None:
            worker.process.terminate()
            try:
                async with asyncio.timeout(WAIT):
                    await worker.process.wait()
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()


async def _attached(live: Live, count: int = 1) -> None:
    async with asyncio.timeout(WAIT):
        while len(live.gateway.tasks.scheduler.sessions if live.gateway.tasks else ()) < count:
            await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0 until reaped: read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_task_reports_progress_and_two_results_then_completes(
    live: Live, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker()
    await _attached(live)
    script = scripts.write(tmp_path, "complete", scripts.COMPLETE)
    task_id = await live.create(
        script,
        name="complete-me",
        containerEnvironment=[{"key": "MODE", "value": "e2e"}],
        secrets=[{"name": "HF_TOKEN", "value": SECRET}],
    )
    running = await live.wait_status(task_id, {"RUNNING", "COMPLETED"})
    assert running["instances"][0]["instanceId"] == "e2e-0"
    done = await live.wait_status(task_id, {"COMPLETED"})
    assert done["percentComplete"] == 100 and "lastHeartbeatAt" in done

    results = await live.listing(task_id, "results")
    assert sorted(r["name"] for r in results) == ["ckpt/model.bin", "summary.json"]
    model = next(r for r in results if r["name"] == "ckpt/model.bin")
    assert model["metadata"]["sizeBytes"] == 1024 and model["taskId"] == task_id
    summary = orjson.loads((worker.work_dir / task_id / "results" / "summary.json").read_bytes())
    assert summary == {
        "NVCT_TASK_ID": task_id,
        "NVCT_TASK_NAME": "complete-me",
        "NVCT_NCA_ID": live.gateway.settings.default_nca_id,
        "MODE": "e2e",
        "CFGATE_WORKER_TOKEN": None,
        "secretNames": ["HF_TOKEN"],
        "secretOk": True,
    }
    messages = [e["message"] for e in await live.listing(task_id, "events")]
    assert messages[:2] == ["Task created and queued", "Task launched on instance e2e-0"]
    assert "Task running on instance e2e-0" in messages
    assert "Progress 10%" in messages and "Progress 50%" in messages
    assert messages[-1] == "Task completed"
    assert SECRET not in worker.output() and live.admin_token not in worker.output()


async def test_cancelled_task_ends_canceled_and_its_process_is_gone(
    live: Live, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker()
    await _attached(live)
    task_id = await live.create(
        scripts.write(tmp_path, "forever", scripts.FOREVER), terminationGracePeriodDuration="PT5S"
    )
    await live.wait_status(task_id, {"RUNNING"})
    pid_file = worker.work_dir / task_id / "pid"
    async with asyncio.timeout(WAIT):
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    assert _alive(pid)

    response = await live.tasks.post(f"/v1/nvct/tasks/{task_id}/cancel", headers=live.key)
    assert response.status_code == 200 and response.json()["task"]["status"] == "CANCELED"
    async with asyncio.timeout(WAIT):
        while _alive(pid):
            await asyncio.sleep(0.05)
    assert (await live.task(task_id))["status"] == "CANCELED"
    assert (await live.tasks.post(f"/v1/nvct/tasks/{task_id}/cancel", headers=live.key)).status_code == 400


async def test_task_over_max_runtime_ends_exceeded(live: Live, start_worker: StartWorker, tmp_path: Path) -> None:
    await start_worker()
    await _attached(live)
    task_id = await live.create(scripts.write(tmp_path, "forever", scripts.FOREVER), maxRuntimeDuration="PT1S")
    done = await live.wait_status(task_id, {"EXCEEDED_MAX_RUNTIME_DURATION"})
    assert 0 < done["percentComplete"] < 100
    messages = [e["message"] for e in await live.listing(task_id, "events")]
    assert messages[-1].startswith("Task exceeded max runtime duration: ran longer than 1 s")


async def test_task_with_stale_progress_ends_errored(live: Live, start_worker: StartWorker, tmp_path: Path) -> None:
    await start_worker()
    await _attached(live)
    task_id = await live.create(scripts.write(tmp_path, "stalls", scripts.STALLS))
    done = await live.wait_status(task_id, {"ERRORED"})
    assert done["percentComplete"] == 10
    messages = [e["message"] for e in await live.listing(task_id, "events")]
    assert messages[-1] == f"Task errored: progress stale for more than {STALE_SECONDS:g} s"


async def test_task_nobody_can_run_ends_exceeded_max_queued(
    live: Live, start_worker: StartWorker, tmp_path: Path
) -> None:
    await start_worker()  # offers H100 only
    await _attached(live)
    task_id = await live.create(
        scripts.write(tmp_path, "forever", scripts.FOREVER),
        gpuSpecification={"gpu": "B200", "instanceType": "NCP.GPU.B200_8x"},
        maxQueuedDuration="PT1S",
    )
    done = await live.wait_status(task_id, {"EXCEEDED_MAX_QUEUED_DURATION"})
    assert done["instances"] == []
    messages = [e["message"] for e in await live.listing(task_id, "events")]
    assert messages == ["Task created and queued", "Task was not launched within its maxQueuedDuration PT1S"]


async def test_worker_with_a_bad_credential_is_refused(live: Live, start_worker: StartWorker) -> None:
    worker = await start_worker(token="not-a-valid-token")
    async with asyncio.timeout(WAIT):
        assert await worker.process.wait() == 3
    assert "UNAUTHENTICATED" in worker.output()


async def test_deleting_a_running_task_terminates_it_first(
    live: Live, start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = await start_worker()
    await _attached(live)
    task_id = await live.create(
        scripts.write(tmp_path, "forever", scripts.FOREVER), terminationGracePeriodDuration="PT5S"
    )
    await live.wait_status(task_id, {"RUNNING"})
    pid_file = worker.work_dir / task_id / "pid"
    async with asyncio.timeout(WAIT):
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    response = await live.tasks.delete(f"/v1/nvct/tasks/{task_id}", headers=live.key)
    assert response.status_code == 204
    async with asyncio.timeout(WAIT):
        while _alive(pid):
            await asyncio.sleep(0.05)
    assert (await live.tasks.get(f"/v1/nvct/tasks/{task_id}", headers=live.key)).status_code == 404
