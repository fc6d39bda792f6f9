"""Two real gateway processes on one Redis: a status poll answered from the Redis record (the
process polled did not accept the request) still binds a key's function resources (issue 12 item 5)."""

from __future__ import annotations

import asyncio

from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.cluster.conftest import Cluster, pexec_path
from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import create_key, key_body


async def test_poll_on_the_other_process_needs_a_key_allowed_on_the_function(cluster: Cluster) -> None:
    a = cluster.add()
    await cluster.bootstrap(a)
    fid_x, _ = await cluster.deployed_function(a)
    fid_y, _ = await cluster.deployed_function(a)
    b = cluster.add()  # loads both functions at start-up
    async with a.client("api-keys.localhost") as keys:
        body = key_body(resources=[{"type": "function", "id": f"{fid_y}/*"}])
        key_y = {"Authorization": f"Bearer {(await create_key(keys, cluster.admin_token, body))['value']}"}
    release = asyncio.Event()

    async def slow(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        await release.wait()
        worker.answer(invocation.request_id, 200, b'{"done":true}')

    await cluster.worker(a, fid_x, slow)
    async with a.client() as on_a, b.client() as on_b:
        first = await on_a.post(pexec_path(fid_x), json={}, headers={**cluster.auth, "NVCF-POLL-SECONDS": "1"})
        assert first.status_code == 202, first.text
        status = f"/v2/nvcf/pexec/status/{first.headers['nvcf-reqid']}"
        refused = await on_b.get(status, headers={**key_y, "NVCF-POLL-SECONDS": "0"})
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        pending = await on_b.get(status, headers={**cluster.auth, "NVCF-POLL-SECONDS": "0"})
        assert pending.status_code == 202, pending.text
        release.set()
        done = await on_b.get(status, headers=cluster.auth)
        assert done.status_code == 200 and done.json() == {"done": True}
