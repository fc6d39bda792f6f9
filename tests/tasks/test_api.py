"""Contract of ``/v1/nvct`` on ``tasks.<domain>``: status codes, JSON field names, cursors, validation."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.store.schema import task_events, task_secrets
from gateway.store.schema import tasks as tasks_table
from tests.gateway.helpers import assert_problem
from tests.tasks.conftest import Headers, create_task, task_body

TASK_FIELDS = {
    "id", "ncaId", "name", "status", "gpuSpecification", "containerImage", "containerArgs",
    "maxQueuedDuration", "terminationGracePeriodDuration", "resultHandlingStrategy", "percentComplete",
    "lastUpdatedAt", "createdAt", "instances", "healthInfo",
}  # fmt: skip
PLAIN = "hf_plaintext-token-123"


async def count(gateway: Gateway, table: Any) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_create_returns_task_dto(tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway) -> None:
    response = await tasks.post("/v1/nvct/tasks", json=task_body(), headers=task_key)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    dto = response.json()["task"]
    assert set(response.json()) == {"task"}
    assert set(dto) == TASK_FIELDS
    assert uuid.UUID(dto["id"]).version == 4
    assert dto["ncaId"] == gateway.settings.default_nca_id
    assert dto["status"] == "QUEUED" and dto["percentComplete"] == 0 and dto["instances"] == []
    assert dto["maxQueuedDuration"] == "PT72H" and dto["terminationGracePeriodDuration"] == "PT1H"
    assert dto["gpuSpecification"] == {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x"}
    assert dto["createdAt"].endswith("Z") and dto["healthInfo"] == {"status": "QUEUED"}
    got = await tasks.get(f"/v1/nvct/tasks/{dto['id']}", headers=task_key)
    assert got.status_code == 200 and got.json()["task"]["id"] == dto["id"]


async def test_secrets_are_sealed_and_only_named(
    tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    dto = await create_task(tasks, task_key, secrets=[{"name": "HF_TOKEN", "value": PLAIN}])
    assert dto["secrets"] == ["HF_TOKEN"]
    url = f"/v1/nvct/tasks/{dto['id']}"
    plain_get = await tasks.get(url, headers=task_key)
    assert "secrets" not in plain_get.json()["task"]
    with_names = await tasks.get(url + "?includeSecrets=true", headers=task_key)
    assert with_names.json()["task"]["secrets"] == ["HF_TOKEN"]
    put = await tasks.put(
        f"/v1/nvct/secrets/tasks/{dto['id']}",
        json={"secrets": [{"name": "WANDB_KEY", "value": "wandb-plain"}, {"name": "HF_TOKEN", "value": PLAIN + "2"}]},
        headers=task_key,
    )
    assert put.status_code == 204 and put.content == b""
    again = await tasks.get(url + "?includeSecrets=true", headers=task_key)
    assert again.json()["task"]["secrets"] == ["HF_TOKEN", "WANDB_KEY"]
    async with gateway.runtime.store.engine.connect() as conn:
        rows = {r.name: r.ciphertext for r in await conn.execute(select(task_secrets))}
    assert set(rows) == {"HF_TOKEN", "WANDB_KEY"}
    box = gateway.runtime.secretbox
    assert box.open_sealed(rows["HF_TOKEN"], f"task-secret:{dto['id']}:HF_TOKEN") == PLAIN + "2"
    for text in [*rows.values(), plain_get.text, with_names.text, again.text, caplog.text]:
        assert PLAIN not in text and "wandb-plain" not in text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "-bad"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"gpuSpecification": None}, "gpuSpecification"),
        ({"gpuSpecification": {"gpu": "H100"}}, "gpuSpecification.instanceType"),
        ({"containerImage": None}, "exactly one of containerImage and helmChart"),
        ({"helmChart": "https://charts.example.com/x.tgz"}, "exactly one of containerImage and helmChart"),
        ({"maxRuntimeDuration": "1 hour"}, "maxRuntimeDuration"),
        ({"maxQueuedDuration": "PT0S"}, "maxQueuedDuration"),
        ({"resultHandlingStrategy": "UPLOAD"}, "UPLOAD"),
        ({"resultHandlingStrategy": "S3"}, "resultHandlingStrategy"),
        ({"secrets": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "unique"),
        ({"containerEnvironment": [{"key": "K", "value": "1"}, {"key": "K", "value": "2"}]}, "unique"),
    ],
)
async def test_invalid_create_is_400_and_writes_nothing(
    tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway, overrides: dict[str, Any], field: str
) -> None:
    response = await tasks.post("/v1/nvct/tasks", json=task_body(**overrides), headers=task_key)
    body = assert_problem(response, 400, "bad-request")
    assert field in body["detail"]
    assert await count(gateway, tasks_table) == 0 and await count(gateway, task_events) == 0


async def test_malformed_json_is_400(tasks: httpx.AsyncClient, task_key: Headers) -> None:
    response = await tasks.post(
        "/v1/nvct/tasks", content=b"{not json", headers={**task_key, "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


async def test_gpu_validator_hook_refuses_with_400(
    tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway
) -> None:
    seen: list[tuple[str, str, str]] = []

    def validator(nca_id: str, spec: Mapping[str, Any]) -> None:
        seen.append((nca_id, spec["gpu"], spec["instanceType"]))
        if spec["gpu"] != "H100":
            raise ValueError(f"No cluster offers GPU '{spec['gpu']}'")

    gateway.runtime.task_gpu_validator = validator
    refused = await tasks.post("/v1/nvct/tasks", json=task_body(gpuSpecification={"gpu": "B200", "instanceType": "x"}),
                               headers=task_key)  # fmt: skip
    assert assert_problem(refused, 400)["detail"] == "No cluster offers GPU 'B200'"
    assert await count(gateway, tasks_table) == 0
    await create_task(tasks, task_key)
    nca = gateway.settings.default_nca_id
    assert seen == [(nca, "B200", "x"), (nca, "H100", "NCP.GPU.H100_1x")]


async def test_list_pages_with_cursor_and_status_filter(tasks: httpx.AsyncClient, task_key: Headers) -> None:
    created = [await create_task(tasks, task_key, name=f"t{i}") for i in range(3)]
    first = await tasks.get("/v1/nvct/tasks?limit=2", headers=task_key)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"tasks", "limit", "cursor"} and body["limit"] == 2
    assert [t["name"] for t in body["tasks"]] == ["t2", "t1"]
    second = (await tasks.get(f"/v1/nvct/tasks?limit=2&cursor={body['cursor']}", headers=task_key)).json()
    assert set(second) == {"tasks"} and [t["name"] for t in second["tasks"]] == ["t0"]
    default = (await tasks.get("/v1/nvct/tasks", headers=task_key)).json()
    assert set(default) == {"tasks"} and len(default["tasks"]) == 3

    cancel = await tasks.post(f"/v1/nvct/tasks/{created[1]['id']}/cancel", headers=task_key)
    assert cancel.status_code == 200
    canceled = (await tasks.get("/v1/nvct/tasks?status=CANCELED", headers=task_key)).json()
    assert [t["id"] for t in canceled["tasks"]] == [created[1]["id"]]
    queued = (await tasks.get("/v1/nvct/tasks?status=QUEUED", headers=task_key)).json()
    assert [t["name"] for t in queued["tasks"]] == ["t2", "t0"]


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "status=queued", "status=DONE", "cursor=%%%"])
async def test_bad_list_query_is_400(tasks: httpx.AsyncClient, task_key: Headers, query: str) -> None:
    assert_problem(await tasks.get(f"/v1/nvct/tasks?{query}", headers=task_key), 400)


async def test_bulk_returns_own_known_tasks(
    tasks: httpx.AsyncClient, task_key: Headers, other_task_jwt: Headers
) -> None:
    mine = await create_task(tasks, task_key)
    theirs = await create_task(tasks, other_task_jwt)
    unknown = str(uuid.uuid4())
    response = await tasks.post(
        "/v1/nvct/tasks/bulk", json={"taskIds": [unknown, mine["id"], theirs["id"]]}, headers=task_key
    )
    assert response.status_code == 200
    assert [t["id"] for t in response.json()["tasks"]] == [mine["id"]]
    assert_problem(await tasks.post("/v1/nvct/tasks/bulk", json={"taskIds": []}, headers=task_key), 400)
    assert_problem(await tasks.post("/v1/nvct/tasks/bulk", json={"taskIds": ["nope"]}, headers=task_key), 400)


async def test_cancel_then_cancel_again_is_400(tasks: httpx.AsyncClient, task_key: Headers) -> None:
    dto = await create_task(tasks, task_key)
    url = f"/v1/nvct/tasks/{dto['id']}/cancel"
    first = await tasks.post(url, headers=task_key)
    assert first.status_code == 200 and first.json()["task"]["status"] == "CANCELED"
    detail = assert_problem(await tasks.post(url, headers=task_key), 400)["detail"]
    assert "CANCELED" in detail
    events = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/events", headers=task_key)).json()
    assert [e["message"] for e in events["events"]] == ["Task created and queued", "Task canceled"]


async def test_delete_is_204_and_removes_everything(
    tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway
) -> None:
    dto = await create_task(tasks, task_key, secrets=[{"name": "S", "value": "v"}])
    response = await tasks.delete(f"/v1/nvct/tasks/{dto['id']}", headers=task_key)
    assert response.status_code == 204 and response.content == b""
    assert_problem(await tasks.get(f"/v1/nvct/tasks/{dto['id']}", headers=task_key), 404, "not-found")
    assert_problem(await tasks.delete(f"/v1/nvct/tasks/{dto['id']}", headers=task_key), 404)
    for table in (tasks_table, task_events, task_secrets):
        assert await count(gateway, table) == 0


async def test_events_and_results_pages(tasks: httpx.AsyncClient, task_key: Headers, gateway: Gateway) -> None:
    dto = await create_task(tasks, task_key)
    repository = gateway.tasks.repository if gateway.tasks else None
    assert repository is not None
    await repository.add_event(dto["id"], dto["ncaId"], "second")
    for name in ("a.json", "b.json", "c.json"):
        assert await repository.add_result(dto["id"], dto["ncaId"], name, {"sizeBytes": 2})
    assert not await repository.add_result(dto["id"], dto["ncaId"], "a.json", {})

    events = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/events?limit=1", headers=task_key)).json()
    assert set(events) == {"events", "limit", "cursor"}
    (event,) = events["events"]
    assert set(event) == {"eventId", "taskId", "ncaId", "message", "createdAt"}
    assert event["message"] == "Task created and queued" and event["taskId"] == dto["id"]
    rest = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/events?limit=1&cursor={events['cursor']}",
                            headers=task_key)).json()  # fmt: skip
    assert [e["message"] for e in rest["events"]] == ["second"] and set(rest) == {"events"}

    page1 = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/results?limit=2", headers=task_key)).json()
    assert set(page1) == {"results", "limit", "cursor"}
    assert set(page1["results"][0]) == {"resultId", "taskId", "ncaId", "name", "metadata", "createdAt"}
    assert [r["name"] for r in page1["results"]] == ["a.json", "b.json"]
    assert page1["results"][0]["metadata"] == {"sizeBytes": 2}
    page2 = (await tasks.get(f"/v1/nvct/tasks/{dto['id']}/results?limit=2&cursor={page1['cursor']}",
                             headers=task_key)).json()  # fmt: skip
    assert set(page2) == {"results"} and [r["name"] for r in page2["results"]] == ["c.json"]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/events"), ("GET", "/results")],
)
async def test_task_paths_need_a_uuid_and_a_known_task(
    tasks: httpx.AsyncClient, task_key: Headers, method: str, suffix: str
) -> None:
    assert_problem(await tasks.request(method, f"/v1/nvct/tasks/not-a-uuid{suffix}", headers=task_key), 400)
    unknown = await tasks.request(method, f"/v1/nvct/tasks/{uuid.uuid4()}{suffix}", headers=task_key)
    assert_problem(unknown, 404, "not-found")


async def test_put_secrets_validation(tasks: httpx.AsyncClient, task_key: Headers) -> None:
    dto = await create_task(tasks, task_key)
    url = f"/v1/nvct/secrets/tasks/{dto['id']}"
    assert_problem(await tasks.put(url, json={"secrets": []}, headers=task_key), 400)
    assert_problem(await tasks.put(url, json={}, headers=task_key), 400)
    dup = {"secrets": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}
    assert_problem(await tasks.put(url, json=dup, headers=task_key), 400)
    unknown = f"/v1/nvct/secrets/tasks/{uuid.uuid4()}"
    assert_problem(await tasks.put(unknown, json={"secrets": [{"name": "A", "value": "1"}]}, headers=task_key), 404)


async def test_openapi_lists_every_task_operation(tasks: httpx.AsyncClient) -> None:
    document = (await tasks.get("/v3/openapi")).json()
    paths = document["paths"]
    own = {
        "/v1/nvct/tasks",
        "/v1/nvct/tasks/bulk",
        "/v1/nvct/tasks/{taskId}",
        "/v1/nvct/tasks/{taskId}/cancel",
        "/v1/nvct/tasks/{taskId}/events",
        "/v1/nvct/tasks/{taskId}/results",
        "/v1/nvct/secrets/tasks/{taskId}",
    }
    assert set(paths) == own | {p.replace("/v1/nvct", "/v1/nvct/accounts/{ncaId}") for p in own}
    assert set(paths["/v1/nvct/tasks"]) == {"get", "post"}
    assert set(paths["/v1/nvct/tasks/{taskId}"]) == {"get", "delete"}
