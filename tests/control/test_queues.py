"""The memory queue's own structures (window, Fenwick tree) and the ``/v2/nvcf/queues…`` endpoints.

The queue protocol itself is tested on every implementation in ``tests/invoker/test_queue_protocol.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import update

from gateway.app import Gateway
from gateway.store.schema import function_versions
from invoker.instances import LiveInstance
from invoker.queues import MemoryQueue, QueuePosition
from invoker.queues.memory import MIN_WINDOW, Fenwick
from tests.control.conftest import OTHER_CLIENT_ID, OTHER_NCA_ID
from tests.control.helpers import create_function, deployment_body
from tests.gateway.helpers import admin_token, assert_problem, create_key, key_body

F, V, W = "fn", "v1", "v2"


# --- MemoryQueue -----------------------------------------------------------------------------------


async def positions(queue: MemoryQueue, ids: list[str]) -> list[int | None]:
    found = [await queue.position(i) for i in ids]
    return [p.position if p else None for p in found]


async def test_window_rebuilds_keep_positions_right() -> None:
    """Far more head re-inserts and tail appends than the initial window holds."""
    queue = MemoryQueue()
    n = MIN_WINDOW * 5
    for i in range(n):
        await queue.enqueue(V, F, f"t{i}", None)
    for i in range(0, n, 3):
        await queue.cancel(f"t{i}")
    # Take and requeue at the head many times: the head slot walks below the window's base.
    for i in range(n):
        await queue.enqueue(V, F, f"h{i}", None)
        await queue.take(V)
    flying = [
        rid
        for rid in [f"t{i}" for i in range(n)] + [f"h{i}" for i in range(n)]
        if await queue.position(rid) == QueuePosition(F, V, 0)
    ]
    for rid in flying:
        assert await queue.requeue(rid)
    expected_order = list(reversed(flying))
    expected_order += [f"t{i}" for i in range(n) if i % 3 and f"t{i}" not in flying]
    expected_order += [f"h{i}" for i in range(n) if f"h{i}" not in flying]
    assert await queue.depth(V) == len(expected_order)
    assert await positions(queue, expected_order) == list(range(1, len(expected_order) + 1))
    assert [(await queue.take(V)).request_id for _ in expected_order] == expected_order  # type: ignore[union-attr]


def test_fenwick_prefix_sums() -> None:
    tree = Fenwick(10, [1, 4, 4, 9])
    assert [tree.prefix(i) for i in range(11)] == [0, 0, 1, 1, 1, 3, 3, 3, 3, 3, 4]
    tree.add(4, -2)
    tree.add(0, 1)
    assert [tree.prefix(i) for i in range(11)] == [0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    assert tree.size == 10


# --- endpoints -------------------------------------------------------------------------------------


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def deployed_function(api: httpx.AsyncClient, admin: dict[str, str], **deployment: Any) -> tuple[str, str]:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
    response = await api.post(url, json=deployment_body(**deployment), headers=admin)
    assert response.status_code == 200, response.text
    return fid, vid


async def enqueue(gateway: Gateway, fid: str, vid: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for rid in ids:
        await gateway.runtime.queues.enqueue(vid, fid, rid, b"{}")
    return ids


def assert_json(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


async def test_function_queues(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin)
    await enqueue(gateway, fid, vid, 3)
    body = assert_json(await api.get(f"/v2/nvcf/queues/functions/{fid}", headers=operator))
    assert body == {
        "functionId": fid,
        "queues": [{"functionVersionId": vid, "functionName": "echo", "functionStatus": "DEPLOYING", "queueDepth": 3}],
    }
    one = assert_json(await api.get(f"/v2/nvcf/queues/functions/{fid}/versions/{vid}", headers=operator))
    assert one == body


async def test_only_deployed_versions_are_listed(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin, minInstances=0)
    response = await api.post(
        f"/v2/nvcf/functions/{fid}/versions",
        json={"name": "echo", "inferenceUrl": "/echo", "containerImage": "nvcr.io/example/echo:2.0"},
        headers=admin,
    )
    idle = response.json()["function"]["versionId"]
    body = assert_json(await api.get(f"/v2/nvcf/queues/functions/{fid}", headers=operator))
    assert body["queues"] == [
        {"functionVersionId": vid, "functionName": "echo", "functionStatus": "ACTIVE", "queueDepth": 0}
    ]
    problem = assert_problem(await api.get(f"/v2/nvcf/queues/functions/{fid}/versions/{idle}", headers=operator), 404)
    assert problem["detail"] == f"Function '{fid}' version '{idle}' is not deployed"


async def test_degraded_version_is_listed(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin)
    worker = LiveInstance(instance_id="w1", function_id=fid, version_id=vid)
    await gateway.runtime.instances.register(worker)
    await gateway.runtime.instances.deregister("w1")
    body = assert_json(await api.get(f"/v2/nvcf/queues/functions/{fid}/versions/{vid}", headers=operator))
    assert body["queues"][0]["functionStatus"] == "DEGRADED"


async def test_undeployed_function_is_404(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str]
) -> None:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    problem = assert_problem(await api.get(f"/v2/nvcf/queues/functions/{fid}", headers=operator), 404, "not-found")
    assert problem["detail"] == f"Function '{fid}': no version is deployed"
    assert_problem(await api.get(f"/v2/nvcf/queues/functions/{fid}/versions/{vid}", headers=operator), 404)


async def test_unknown_ids_are_404_and_bad_ids_400(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str]
) -> None:
    fid, _ = await deployed_function(api, admin)
    unknown = str(uuid.uuid4())
    assert_problem(await api.get(f"/v2/nvcf/queues/functions/{unknown}", headers=operator), 404)
    assert_problem(await api.get(f"/v2/nvcf/queues/functions/{fid}/versions/{unknown}", headers=operator), 404)
    assert_problem(await api.get(f"/v2/nvcf/queues/{unknown}/position", headers=operator), 404)
    for url in (
        "/v2/nvcf/queues/functions/abc",
        f"/v2/nvcf/queues/functions/{fid}/versions/abc",
        "/v2/nvcf/queues/abc/position",
    ):
        problem = assert_problem(await api.get(url, headers=operator), 400, "bad-request")
        assert "must be a UUID" in problem["detail"]


async def test_position_in_queue(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin)
    ids = await enqueue(gateway, fid, vid, 3)
    for index, rid in enumerate(ids):
        body = assert_json(await api.get(f"/v2/nvcf/queues/{rid}/position", headers=operator))
        assert body == {"functionId": fid, "functionVersionId": vid, "positionInQueue": index + 1}
    taken = await gateway.runtime.queues.take(vid)
    assert taken is not None and taken.request_id == ids[0]
    with_worker = assert_json(await api.get(f"/v2/nvcf/queues/{ids[0]}/position", headers=operator))
    assert with_worker["positionInQueue"] == 0
    assert assert_json(await api.get(f"/v2/nvcf/queues/{ids[2]}/position", headers=operator))["positionInQueue"] == 2
    await gateway.runtime.queues.ack(ids[0])
    problem = assert_problem(await api.get(f"/v2/nvcf/queues/{ids[0]}/position", headers=operator), 404)
    assert problem["detail"] == f"Request '{ids[0]}' is not in pending or in-progress state"
    depth = assert_json(await api.get(f"/v2/nvcf/queues/functions/{fid}", headers=operator))["queues"][0]["queueDepth"]
    assert depth == 2


async def test_shared_account_may_read(
    api: httpx.AsyncClient, admin: dict[str, str], other_admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin)
    [rid] = await enqueue(gateway, fid, vid, 1)
    urls = [
        f"/v2/nvcf/queues/functions/{fid}",
        f"/v2/nvcf/queues/functions/{fid}/versions/{vid}",
        f"/v2/nvcf/queues/{rid}/position",
    ]
    for url in urls:  # not shared yet: as if it did not exist
        assert_problem(await api.get(url, headers=other_admin), 404)
    await gateway.runtime.catalog.authorizations.add(fid, vid, OTHER_NCA_ID, OTHER_CLIENT_ID)
    await gateway.runtime.routes.refresh(fid)
    for url in urls:
        assert (await api.get(url, headers=other_admin)).status_code == 200


async def test_public_function_is_403(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    operator: dict[str, str],
    other_admin: dict[str, str],
    gateway: Gateway,
) -> None:
    fid, vid = await deployed_function(api, admin)
    [rid] = await enqueue(gateway, fid, vid, 1)
    async with gateway.runtime.store.engine.begin() as conn:
        await conn.execute(update(function_versions).where(function_versions.c.version_id == vid).values(public=1))
    await gateway.runtime.routes.refresh(fid)
    urls = [
        f"/v2/nvcf/queues/functions/{fid}",
        f"/v2/nvcf/queues/functions/{fid}/versions/{vid}",
        f"/v2/nvcf/queues/{rid}/position",
    ]
    for headers in (operator, other_admin):
        for url in urls:
            problem = assert_problem(await api.get(url, headers=headers), 403, "forbidden")
            assert problem["detail"] == f"Function '{fid}': queue details are not available for public functions"


async def test_without_bearer_is_401_and_without_scope_403(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, keys_client: httpx.AsyncClient
) -> None:
    fid, vid = await deployed_function(api, admin)
    [rid] = await enqueue(gateway, fid, vid, 1)
    urls = [
        f"/v2/nvcf/queues/functions/{fid}",
        f"/v2/nvcf/queues/functions/{fid}/versions/{vid}",
        f"/v2/nvcf/queues/{rid}/position",
    ]
    key = await create_key(
        keys_client, await admin_token(keys_client), key_body(scopes=["list_functions", "invoke_function"])
    )
    for url in urls:
        response = await api.get(url)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        # The default admin token has no queue_details; neither has this key.
        assert "queue_details" in assert_problem(await api.get(url, headers=admin), 403, "forbidden")["detail"]
        assert_problem(await api.get(url, headers=bearer(key["value"])), 403, "forbidden")


async def test_api_key_with_queue_details(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, keys_client: httpx.AsyncClient
) -> None:
    fid, vid = await deployed_function(api, admin)
    [rid] = await enqueue(gateway, fid, vid, 1)
    key = await create_key(keys_client, await admin_token(keys_client))  # default function-key scopes
    body = assert_json(await api.get(f"/v2/nvcf/queues/{rid}/position", headers=bearer(key["value"])))
    assert body == {"functionId": fid, "functionVersionId": vid, "positionInQueue": 1}


async def test_undeploy_leaves_no_queue_listing(
    api: httpx.AsyncClient, admin: dict[str, str], operator: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await deployed_function(api, admin)
    assert (await api.delete(f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", headers=admin)).status_code == 200
    assert_problem(await api.get(f"/v2/nvcf/queues/functions/{fid}", headers=operator), 404)
