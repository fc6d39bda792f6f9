"""The gateway's side of the ``Tasks`` stream, driven by a scripted task worker over real gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from gateway.app import Gateway
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc
from tests.tasks.conftest import Headers, create_task

WAIT = 15.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"task_tick_ms": 100}


class ScriptedTaskWorker:
    def __init__(self, target: str, hello: pb.TaskHello, first: pb.TaskWorkerMessage | None = None) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.out: asyncio.Queue[pb.TaskWorkerMessage | None] = asyncio.Queue()
        self.out.put_nowait(first if first is not None else pb.TaskWorkerMessage(hello=hello))
        stub = worker_pb2_grpc.WorkerServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.call = stub.Tasks(self._outgoing())
        self.received: list[pb.TaskGatewayMessage] = []

    async def _outgoing(self) -> AsyncIterator[pb.TaskWorkerMessage]:
        while (message := await self.out.get()) is not None:
            yield message

    async def read(self) -> pb.TaskGatewayMessage:
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.call.read()
                assert message is not grpc.aio.EOF
                assert isinstance(message, pb.TaskGatewayMessage)
                if message.ping and not (message.assignments or message.stops):
                    self.out.put_nowait(pb.TaskWorkerMessage(heartbeat=True))
                    continue
                self.received.append(message)
                return message

    def send(self, **fields: Any) -> None:
        self.out.put_nowait(pb.TaskWorkerMessage(**fields))

    async def close(self) -> None:
        self.out.put_nowait(None)
        self.call.cancel()
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            await self.channel.close(grace=None)


def hello(token: str, **fields: Any) -> pb.TaskHello:
    values: dict[str, Any] = {"credential": token, "instance_id": "scripted-1", "gpu": "H100",
                              "instance_type": "NCP.GPU.H100_1x", "max_tasks": 2}  # fmt: skip
    values.update(fields)
    return pb.TaskHello(**values)


@pytest.fixture
async def workers(gateway: Gateway) -> AsyncIterator[list[ScriptedTaskWorker]]:
    started: list[ScriptedTaskWorker] = []
    yield started
    for worker in started:
        await worker.close()
    # Let the gateway record the departures (a store write each) before it shuts its store down.
    if gateway.tasks is not None:
        scheduler = gateway.tasks.scheduler
        async with asyncio.timeout(WAIT):
            while scheduler.sessions:
                await asyncio.sleep(0.02)


def target(gateway: Gateway) -> str:
    return f"127.0.0.1:{gateway.worker_port}"


async def attach(gateway: Gateway, workers: list[ScriptedTaskWorker], token: str, **fields: Any) -> ScriptedTaskWorker:
    worker = ScriptedTaskWorker(target(gateway), hello(token, **fields))
    workers.append(worker)
    welcome = await worker.read()
    assert welcome.welcome.session_id and welcome.welcome.heartbeat_interval_ms == gateway.settings.worker_heartbeat_ms
    return worker


async def wait_status(tasks: httpx.AsyncClient, headers: Headers, task_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            dto: dict[str, Any] = (await tasks.get(f"/v1/nvct/tasks/{task_id}", headers=headers)).json()["task"]
            if dto["status"] == status:
                return dto
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        ("not-a-token", grpc.StatusCode.UNAUTHENTICATED),
        ("task_key", grpc.StatusCode.PERMISSION_DENIED),
        ("task_jwt", grpc.StatusCode.PERMISSION_DENIED),
        ("", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
async def test_a_worker_needs_a_cluster_management_token(
    gateway: Gateway, workers: list[ScriptedTaskWorker], task_key: Headers, task_jwt: Headers, credential: str,
    code: grpc.StatusCode,
) -> None:  # fmt: skip
    token = {"task_key": task_key, "task_jwt": task_jwt}.get(credential, {"Authorization": f"Bearer {credential}"})
    worker = ScriptedTaskWorker(target(gateway), hello(token["Authorization"].removeprefix("Bearer ").strip()))
    workers.append(worker)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await worker.read()
    assert error.value.code() == code
    assert gateway.tasks is not None and gateway.tasks.scheduler.sessions == {}


async def test_the_first_message_must_be_hello(gateway: Gateway, workers: list[ScriptedTaskWorker]) -> None:
    worker = ScriptedTaskWorker(target(gateway), pb.TaskHello(), pb.TaskWorkerMessage(heartbeat=True))
    workers.append(worker)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await worker.read()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_assignment_progress_results_and_completion(
    gateway: Gateway, workers: list[ScriptedTaskWorker], admin_jwt: str, tasks: httpx.AsyncClient, task_key: Headers
) -> None:
    worker = await attach(gateway, workers, admin_jwt)
    dto = await create_task(
        tasks, task_key, maxRuntimeDuration="PT2M", terminationGracePeriodDuration="PT10S",
        containerEnvironment=[{"key": "EPOCHS", "value": "3"}], secrets=[{"name": "TOKEN", "value": "s3"}],
    )  # fmt: skip
    (assignment,) = (await worker.read()).assignments
    assert (assignment.task_id, assignment.nca_id, assignment.name) == (dto["id"], dto["ncaId"], dto["name"])
    assert assignment.container_image == "nvcr.io/example/trainer:1.0"
    assert assignment.container_args == "python train.py --epochs 1"
    assert dict(assignment.environment) == {"EPOCHS": "3"}
    assert (assignment.max_runtime_ms, assignment.termination_grace_ms) == (120_000, 10_000)
    assert orjson.loads(assignment.secrets_json) == {"TOKEN": "s3"}
    launched = await wait_status(tasks, task_key, dto["id"], "LAUNCHED")
    assert launched["instances"][0] == {
        "instanceId": "scripted-1", "gpu": "H100", "instanceType": "NCP.GPU.H100_1x",
        "launchedAt": launched["instances"][0]["launchedAt"],
    }  # fmt: skip

    worker.send(updates=[pb.TaskUpdate(task_id=dto["id"], state=pb.TASK_RUNNING, percent_complete=30)])
    running = await wait_status(tasks, task_key, dto["id"], "RUNNING")
    async with asyncio.timeout(WAIT):
        while running["percentComplete"] != 30:
            running = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}", headers=task_key)).json()["task"]
    other = "00000000-0000-4000-8000-000000000000"
    worker.send(
        results=[
            pb.TaskResultReport(task_id=dto["id"], name="out/a.json", metadata_json=b'{"sizeBytes": 5}'),
            pb.TaskResultReport(task_id=other, name="stray.json"),
        ],
        updates=[
            pb.TaskUpdate(task_id=dto["id"], state=pb.TASK_COMPLETED, percent_complete=100),
            pb.TaskUpdate(task_id=other, state=pb.TASK_ERRORED),
        ],
    )
    done = await wait_status(tasks, task_key, dto["id"], "COMPLETED")
    assert done["percentComplete"] == 100
    results = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/results", headers=task_key)).json()["results"]
    assert [(r["name"], r["metadata"]) for r in results] == [("out/a.json", {"sizeBytes": 5})]
    events = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/events", headers=task_key)).json()["events"]
    assert [e["message"] for e in events] == [
        "Task created and queued", "Task launched on instance scripted-1", "Task running on instance scripted-1",
        "Progress 30%", "Task completed",
    ]  # fmt: skip


async def test_tasks_go_only_to_matching_workers_and_clusters(
    gateway: Gateway, workers: list[ScriptedTaskWorker], admin_jwt: str, tasks: httpx.AsyncClient, task_key: Headers
) -> None:
    a100 = await attach(gateway, workers, admin_jwt, instance_id="a100", gpu="A100")
    c2 = await attach(gateway, workers, admin_jwt, instance_id="c2", cluster_id="cluster-2")
    c1 = await attach(gateway, workers, admin_jwt, instance_id="c1", cluster_id="cluster-1")
    spec = {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x", "clusters": ["cluster-1"]}
    dto = await create_task(tasks, task_key, gpuSpecification=spec)
    (assignment,) = (await c1.read()).assignments
    assert assignment.task_id == dto["id"]
    launched = await wait_status(tasks, task_key, dto["id"], "LAUNCHED")
    assert launched["instances"][0]["clusterId"] == "cluster-1"
    for silent in (a100, c2):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await silent.read()


async def test_losing_the_worker_errors_its_task_and_cancel_or_delete_stop_it(
    gateway: Gateway, workers: list[ScriptedTaskWorker], admin_jwt: str, tasks: httpx.AsyncClient, task_key: Headers
) -> None:
    worker = await attach(gateway, workers, admin_jwt)
    first = await create_task(tasks, task_key, name="lost")
    second = await create_task(tasks, task_key, name="deleted")
    assigned = {a.task_id for _ in range(2) for a in (await worker.read()).assignments}
    assert assigned == {first["id"], second["id"]}

    response = await tasks.delete(f"/v1/nvct/tasks/{second['id']}", headers=task_key)
    assert response.status_code == 204
    (stop,) = (await worker.read()).stops
    assert (stop.task_id, stop.reason) == (second["id"], "canceled")

    await worker.close()
    errored = await wait_status(tasks, task_key, first["id"], "ERRORED")
    assert errored["instances"][0]["instanceId"] == "scripted-1"
    events = (await tasks.get(f"/v1/nvct/tasks/{first['id']}/events", headers=task_key)).json()["events"]
    assert events[-1]["message"].startswith("Task errored: its worker scripted-1 left")
    with contextlib.suppress(Exception):
        workers.remove(worker)
