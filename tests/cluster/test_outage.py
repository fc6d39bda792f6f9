"""While Redis is away, the requests that need it answer 503 problem+json at once; then it all comes back."""

from __future__ import annotations

import uuid

import httpx

from tests.cluster.conftest import Cluster, pexec_path, restart
from tests.cluster.test_two_processes import echo
from tests.plugins.servers import RedisServerFactory


def assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503 and "Redis" in body["detail"]
    assert response.headers["nvcf-status"] == "errored"
    uuid.UUID(response.headers["nvcf-reqid"])


async def test_pexec_and_status_are_503_while_redis_is_down(
    redis_server_factory: RedisServerFactory, cluster_factory: object
) -> None:
    redis = redis_server_factory(appendonly=True)
    cluster: Cluster = cluster_factory(redis.url)  # type: ignore[operator]
    gateway = cluster.add()
    await cluster.bootstrap(gateway)
    fid, _ = await cluster.deployed_function(gateway)
    unknown = str(uuid.uuid4())
    async with gateway.client(timeout=10.0) as client:
        redis.kill()
        assert_503(await client.post(pexec_path(fid), json={}, headers=cluster.auth))
        assert_503(await client.get(f"/v2/nvcf/pexec/status/{unknown}", headers=cluster.auth))
        health = await client.get("/health")
        assert health.status_code == 200  # the process itself is fine
        await restart(redis)
        await cluster.worker(gateway, fid, echo)
        for _ in range(100):  # the pool reconnects by itself
            answered = await client.post(pexec_path(fid), json={"back": 1}, headers=cluster.auth)
            if answered.status_code == 200:
                break
        assert answered.status_code == 200
        missing = await client.get(f"/v2/nvcf/pexec/status/{unknown}", headers=cluster.auth)
    assert missing.status_code == 404
