"""``/metrics`` of a real ``cfgate serve`` scraped during real invocations (memory queue, Redis
queue, and ``--processes 2``): every family is there and the counters move by exactly what the
test did. Workers are ``ScriptedWorker``s over real gRPC; clients are real HTTP connections."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.control.helpers import deployment_body, function_body
from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.metrics.scraping import Samples, delta, names, scrape, value
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import admin_token, create_function, function_version
from tests.servers import find_free_port
from tests.support.serve_process import ServeProcess, invoke_key, serve_process, wait_active

FAMILIES = {
    "cfgate_gateway_processes",
    "cfgate_http_requests_total",
    "cfgate_invocation_queue_wait_seconds_bucket",
    "cfgate_invocation_queue_wait_seconds_count",
    "cfgate_invocation_queue_wait_seconds_sum",
    "cfgate_invocation_first_byte_seconds_count",
    "cfgate_invocation_duration_seconds_count",
    "cfgate_invocations_total",
    "cfgate_queue_depth",
    "cfgate_queue_oldest_age_seconds",
    "cfgate_workers_connected",
    "cfgate_worker_credits_available",
    "cfgate_worker_credits_granted_total",
    "cfgate_worker_credits_used_total",
    "cfgate_invocations_in_flight",
    "cfgate_invocation_redeliveries_total",
    "cfgate_invocation_attempts_exhausted_total",
    "cfgate_invocation_cancellations_total",
    "cfgate_invocation_expirations_total",
    "cfgate_backend_errors_total",
    "cfgate_invocation_rejections_total",
}


async def answer_ok(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    worker.answer(invocation.request_id, 200, b'{"ok":true}')


async def hold(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    """Never answer (until the worker vanishes)."""


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


async def pexec(base: str, key: str, fid: str, poll: int = 5) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers={"Host": "invocation.localhost"}, timeout=30) as client:
        return await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={"hi": 1},
            headers={"Authorization": f"Bearer {key}", "NVCF-POLL-SECONDS": str(poll)},
        )


async def deployed(base: str, token: str, **deployment: object) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers={"Host": "api.localhost"}, timeout=30) as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(), headers=auth)
        assert created.status_code == 200, created.text
        fid, vid = created.json()["function"]["id"], created.json()["function"]["versionId"]
        url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        response = await api.post(url, json=deployment_body(**deployment), headers=auth)
        assert response.status_code == 200, response.text
    return str(fid), str(vid)


async def exercise(gateway: ServeProcess, metrics_port: int) -> None:
    """The same invocations on either queue; checks every counter's movement."""
    token = gateway.admin_token()
    key = await invoke_key(gateway, token)
    fid_a, vid_a = await deployed(gateway.base, token)  # answered by a worker
    fid_b, vid_b = await deployed(gateway.base, token, minInstances=0)  # no worker: invocations wait
    fid_c, vid_c = await deployed(gateway.base, token)  # a worker that holds, then vanishes
    answering = ScriptedWorker(gateway.grpc_target, token, fid_a, answer_ok, concurrency=4)
    holding = ScriptedWorker(gateway.grpc_target, token, fid_c, hold, concurrency=1)
    await answering.start()
    await holding.start()
    try:
        await wait_active(gateway, token, fid_a, vid_a)
        await wait_active(gateway, token, fid_c, vid_c)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{metrics_port}", timeout=10) as metrics:
            assert (await metrics.post("/metrics")).status_code == 405
            assert (await metrics.get("/v2/nvcf/functions")).status_code == 404
        before = await scrape(metrics_port)
        # Series labeled by function exist once a function had an invocation.
        assert {n for n in FAMILIES if "seconds" not in n and n != "cfgate_invocations_total"} <= names(before)
        assert value(before, "cfgate_workers_connected") == 2
        assert value(before, "cfgate_worker_credits_available") == 5
        assert value(before, "cfgate_worker_credits_granted_total") == 5

        for _ in range(3):
            assert (await pexec(gateway.base, key, fid_a)).status_code == 200
        async with httpx.AsyncClient(base_url=gateway.base, timeout=30) as client:
            unknown = await client.post("/anything", headers={"Host": "nope.localhost"})
            assert unknown.status_code == 404
            # Not on the public port, under any host: only on --metrics-port, which clients never reach.
            for host in ("api.localhost", "invocation.localhost", "metrics.localhost"):
                public = await client.get("/metrics", headers={"Host": host})
                assert public.status_code == 404, (host, public.text)
            # Direct invocation of B, nobody serves it: 504 after the window, and it is cancelled.
            direct = await client.post(
                "/echo",
                headers={"Host": f"{fid_b}.invocation.localhost", "Authorization": f"Bearer {key}",
                         "NVCF-POLL-SECONDS": "1"},
            )  # fmt: skip
            assert direct.status_code == 504, direct.text
        queued = await pexec(gateway.base, key, fid_b, poll=1)
        assert queued.status_code == 202, queued.text
        full = await pexec(gateway.base, key, fid_b, poll=1)
        assert full.status_code == 429, full.text  # CFGATE_MAX_QUEUE_DEPTH=1
        held = await pexec(gateway.base, key, fid_c, poll=1)
        assert held.status_code == 202, held.text

        middle = await scrape(metrics_port)
        assert value(middle, "cfgate_queue_depth", function_id=fid_b, version_id=vid_b) == 1
        assert value(middle, "cfgate_queue_depth", function_id=fid_a, version_id=vid_a) == 0
        assert 0.5 < value(middle, "cfgate_queue_oldest_age_seconds", function_id=fid_b, version_id=vid_b) < 60
        assert value(middle, "cfgate_queue_oldest_age_seconds", function_id=fid_a, version_id=vid_a) == 0
        assert value(middle, "cfgate_invocations_in_flight") == 1  # C's, held

        # C's worker vanishes holding its invocation: it goes back to the queue (one redelivery).
        await holding.crash()
        await eventually(lambda: _redelivered(metrics_port, fid_c, vid_c), "C's invocation redelivered to its queue")
        # A with a rate limit of one a minute: one passes, the next is refused.
        async with httpx.AsyncClient(base_url=gateway.base, headers={"Host": "api.localhost"}, timeout=30) as api:
            limited = await api.put(
                f"/v2/nvcf/ratelimit/functions/{fid_a}/versions/{vid_a}",
                json={"rateLimit": {"rateLimit": "1-M"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert limited.status_code == 204, limited.text
        assert (await pexec(gateway.base, key, fid_a)).status_code == 200
        assert (await pexec(gateway.base, key, fid_a)).status_code == 429

        after = await scrape(metrics_port)
        assert FAMILIES - names(after) == set()

        def d(name: str, **labels: str) -> float:
            return delta(before, after, name, **labels)

        # 4 x 200 and 2 x 202 (pexec), 2 x 429 (queue full, rate limit)
        assert d("cfgate_http_requests_total", service="invocation", method="POST", status="2xx") == 6
        assert d("cfgate_http_requests_total", service="invocation", method="POST", status="4xx") == 2  # two 429
        assert d("cfgate_http_requests_total", service="unknown", method="POST", status="4xx") == 1
        assert d("cfgate_http_requests_total", service="function", method="POST", status="5xx") == 1
        assert d("cfgate_http_requests_total", service="api", method="PUT", status="2xx") == 1
        assert d("cfgate_invocations_total", function_id=fid_a, outcome="fulfilled") == 4
        assert d("cfgate_invocations_total", function_id=fid_b, outcome="cancelled") == 1
        for histogram in ("queue_wait", "first_byte", "duration"):
            assert d(f"cfgate_invocation_{histogram}_seconds_count", function_id=fid_a) == 4
        # B: the direct one ended cancelled without a worker: a total, no queue wait or first byte.
        assert d("cfgate_invocation_duration_seconds_count", function_id=fid_b) == 1
        assert ("cfgate_invocation_queue_wait_seconds_count", frozenset({("function_id", fid_b)})) not in after
        # C's taken twice would be two queue waits; it was taken once (the second take has no worker).
        assert d("cfgate_invocation_queue_wait_seconds_count", function_id=fid_c) == 1
        fast = value(after, "cfgate_invocation_duration_seconds_bucket", function_id=fid_a, le="5.0")
        assert fast == value(after, "cfgate_invocation_duration_seconds_count", function_id=fid_a)
        assert d("cfgate_worker_credits_used_total") == 5  # 4 to A's worker, 1 to C's
        assert d("cfgate_worker_credits_granted_total") == 4  # A's worker: one back per answer
        assert value(after, "cfgate_workers_connected") == 1
        assert value(after, "cfgate_worker_credits_available") == 4
        assert d("cfgate_invocation_redeliveries_total") == 1
        assert d("cfgate_invocation_attempts_exhausted_total") == 0
        assert d("cfgate_invocation_cancellations_total") == 1
        assert d("cfgate_invocation_rejections_total", reason="queue_full") == 1
        assert d("cfgate_invocation_rejections_total", reason="rate_limit") == 1
        assert d("cfgate_invocation_rejections_total", reason="body_budget") == 0
        assert value(after, "cfgate_backend_errors_total", backend="redis") == 0
        assert value(after, "cfgate_backend_errors_total", backend="database") == 0
        assert value(after, "cfgate_queue_depth", function_id=fid_c, version_id=vid_c) == 1
        assert all("request" not in label for _, labels in after for label, _ in labels)
    finally:
        await answering.stop()
        await holding.stop()


async def _redelivered(port: int, fid: str, vid: str) -> bool:
    samples: Samples = await scrape(port)
    return (
        samples.get(("cfgate_invocation_redeliveries_total", frozenset()), 0) == 1
        and samples.get(("cfgate_queue_depth", frozenset({("function_id", fid), ("version_id", vid)})), 0) == 1
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    env["CFGATE_MAX_QUEUE_DEPTH"] = "1"
    return env


async def test_metrics_of_the_memory_queue_move_by_what_was_done(tmp_path: Path) -> None:
    port = find_free_port()
    with serve_process(tmp_path, "--metrics-port", str(port), "--metrics-function-labels", env=_env()) as gateway:
        await exercise(gateway, port)


@pytest.mark.redis
async def test_metrics_of_the_redis_queue_move_by_what_was_done(tmp_path: Path, redis_url: str) -> None:
    port = find_free_port()
    args = ("--metrics-port", str(port), "--metrics-function-labels", "--redis", redis_url)
    with serve_process(tmp_path, *args, env=_env()) as gateway:
        await exercise(gateway, port)


@pytest.mark.redis
@pytest.mark.postgres
async def test_one_scrape_of_two_processes_sees_the_whole_host(
    gateways: Spawn, postgres_dsn: str, redis_url: str
) -> None:
    port = find_free_port()
    env = {"CFGATE_METRICS_PORT": str(port), "CFGATE_METRICS_FUNCTION_LABELS": "1"}
    gateway = gateways(database=postgres_dsn, redis=redis_url, processes=2, **env)
    await gateway.wait_healthy()

    async def both_children() -> bool:
        try:
            return value(await scrape(port), "cfgate_gateway_processes") == 2
        except (httpx.TransportError, KeyError, AssertionError):
            return False

    await eventually(both_children, "both children answering the parent's scrape", seconds=60)
    token = await admin_token(gateway)
    async with gateway.client("api-keys.localhost") as keys:
        made = await keys.post("/v1/keys", json=key_body(), headers={**KEY_HEADERS, "Authorization": f"Bearer {token}"})
        assert made.status_code == 200, made.text
        key = str(made.json()["value"])
    fid_a, vid_a = await create_function(gateway, token)
    fid_b, vid_b = await create_function(gateway, token, minInstances=0)
    worker = ScriptedWorker(gateway.grpc_target, token, fid_a, answer_ok, concurrency=4)
    await worker.start()
    try:

        async def active() -> bool:
            return bool((await function_version(gateway, token, fid_a, vid_a))["status"] == "ACTIVE")

        await eventually(active, "A ACTIVE")
        before = await scrape(port)
        # /health over fresh connections until both processes answered (the kernel spreads them).
        seen: set[str] = set()
        health = 0
        while len(seen) < 2:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(gateway.base + "/health")
            health += 1
            seen.add(response.json()["process"])
            assert health < 400, "one process answered every connection"
        for _ in range(6):
            assert (await pexec(gateway.base, key, fid_a)).status_code == 200
        assert (await pexec(gateway.base, key, fid_b, poll=1)).status_code == 202
        after = await scrape(port)
    finally:
        await worker.stop()

    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    assert value(after, "cfgate_gateway_processes") == 2
    assert d("cfgate_http_requests_total", service="gateway", method="GET", status="2xx") == health
    assert d("cfgate_http_requests_total", service="invocation", method="POST", status="2xx") == 7
    assert d("cfgate_invocations_total", function_id=fid_a, outcome="fulfilled") == 6
    assert d("cfgate_invocation_queue_wait_seconds_count", function_id=fid_a) == 6
    assert d("cfgate_invocation_first_byte_seconds_count", function_id=fid_a) == 6
    assert d("cfgate_worker_credits_used_total") == 6
    assert value(after, "cfgate_workers_connected") == 1
    # Both processes read the one shared queue: the host's depth is 1, not 2.
    assert value(after, "cfgate_queue_depth", function_id=fid_b, version_id=vid_b) == 1
    assert value(after, "cfgate_queue_depth", function_id=fid_a, version_id=vid_a) == 0
