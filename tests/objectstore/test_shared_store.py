"""Two real gateway processes with DIFFERENT data dirs sharing one S3-compatible store (a real
moto_server process), one PostgreSQL and one Redis: a large result written by one is served by
the other; an asset uploaded through one is downloaded by the worker through the other; with
the store down, clients get a 503 problem, never a 500."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.objectstore import S3Bucket
from protos.cfgate.worker.v1 import worker_pb2 as pb
from tests.e2e.driver import ScriptedWorker
from tests.gateway.helpers import assert_problem
from tests.multiproc.processes import GatewayProcess, admin_token, bearer, create_api_key, create_function, spawn
from tests.s3server import ACCESS_KEY, SECRET_KEY, S3Server

LARGE = b"PK\x03\x04" + os.urandom(6 << 20)  # past the 5 MiB direct-answer limit
ASSET = b"\x89PNG" + os.urandom(4096)
DESCRIPTION_HEADER = "x-amz-meta-nvcf-asset-description"


@pytest.fixture
def two_gateways(
    tmp_path: Path, s3: S3Server, bucket: S3Bucket, postgres_dsn: str, redis_url: str
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    # The hosts share the installation's master key (their URL signer comes from the keys it seals
    # in the shared database) and the object store; their data dirs are not shared.
    master_key = base64.b64encode(os.urandom(32)).decode()
    started = [
        spawn(
            tmp_path / f"{name}.log",
            data_dir=tmp_path / name,
            database=postgres_dsn,
            redis=redis_url,
            CFGATE_MASTER_KEY=master_key,
            CFGATE_OBJECT_STORE=s3.url(bucket.config.bucket),
            CFGATE_OBJECT_STORE_ACCESS_KEY=ACCESS_KEY,
            CFGATE_OBJECT_STORE_SECRET_KEY=SECRET_KEY,
        )
        for name in ("a", "b")
    ]
    yield started[0], started[1]
    for gateway in started:
        gateway.stop()


async def _large(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
    rid = invocation.request_id
    start = pb.ResponseStart(request_id=rid, status=200, kind=pb.LARGE_RESULT)
    chunks = [pb.ResponseChunk(request_id=rid, data=LARGE[i : i + (1 << 20)]) for i in range(0, len(LARGE), 1 << 20)]
    worker.send(pb.WorkerMessage(credits=1, starts=[start], chunks=chunks, ends=[pb.ResponseEnd(request_id=rid)]))


async def _started(a: GatewayProcess, b: GatewayProcess, reply: object) -> tuple[str, str, ScriptedWorker]:
    await asyncio.gather(a.wait_healthy(), b.wait_healthy())
    token = await admin_token(a)
    fid, _ = await create_function(a, token)
    worker = ScriptedWorker(a.grpc_target, token, fid, reply)  # type: ignore[arg-type]
    await worker.start()
    key: str = (await create_api_key(a, token))["value"]
    return fid, key, worker


async def _pexec(gateway: GatewayProcess, key: str, fid: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with gateway.client("invocation.localhost") as client:
        return await client.post(
            f"/v2/nvcf/pexec/functions/{fid}",
            json={},
            headers={**bearer(key), "NVCF-POLL-SECONDS": "20", **(headers or {})},
        )


async def _get(gateway: GatewayProcess, location: str) -> httpx.Response:
    url = httpx.URL(location)
    async with gateway.client(url.host) as client:
        return await client.get(url.raw_path.decode())


async def test_a_large_result_written_by_one_gateway_is_served_by_the_other(
    two_gateways: tuple[GatewayProcess, GatewayProcess], bucket: S3Bucket, tmp_path: Path
) -> None:
    a, b = two_gateways
    fid, key, worker = await _started(a, b, _large)
    response = await _pexec(a, key, fid)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    download = await _get(b, location)  # B never saw this invocation
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert download.content == LARGE
    stored = await bucket.list("results/")
    assert [o.key for o in stored] == [f"results/{response.headers['nvcf-reqid']}.zip"]
    assert not (tmp_path / "a" / "results").exists()  # nothing on A's own disk
    await worker.stop()


async def test_an_asset_uploaded_through_one_gateway_reaches_the_worker_through_the_other(
    two_gateways: tuple[GatewayProcess, GatewayProcess], bucket: S3Bucket
) -> None:
    a, b = two_gateways
    fetched: list[bytes] = []

    async def fetch_asset(worker: ScriptedWorker, invocation: pb.Invocation) -> None:
        # The worker downloads through the host it knows (here B), with the URL A handed out.
        async with b.client("api.localhost") as client:
            got = await client.get(invocation.assets[0].url)
        fetched.append(got.content if got.status_code == 200 else got.text.encode())
        worker.answer(invocation.request_id, 200, b'{"ok": true}')

    fid, key, worker = await _started(a, b, fetch_asset)
    async with a.client("api.localhost") as api:
        created = await api.post(
            "/v2/nvcf/assets", json={"contentType": "image/png", "description": "cat"}, headers=bearer(key)
        )
        assert created.status_code == 200, created.text
    asset = created.json()
    upload_url = httpx.URL(asset["uploadUrl"])
    async with b.client("api.localhost") as api:
        put = await api.put(
            upload_url.raw_path.decode(),
            content=ASSET,
            headers={"Content-Type": "image/png", DESCRIPTION_HEADER: "cat"},
        )
    assert put.status_code == 200, put.text
    assert [o.key for o in await bucket.list("assets/")] != []
    response = await _pexec(a, key, fid, {"NVCF-INPUT-ASSET-REFERENCES": asset["assetId"]})
    assert response.status_code == 200, response.text
    assert fetched == [ASSET]
    await worker.stop()


async def test_with_the_store_down_clients_get_503_problems(
    two_gateways: tuple[GatewayProcess, GatewayProcess], s3: S3Server
) -> None:
    a, b = two_gateways
    fid, key, worker = await _started(a, b, _large)
    first = await _pexec(a, key, fid)
    assert first.status_code == 302, first.text
    async with a.client("api.localhost") as api:
        created = await api.post(
            "/v2/nvcf/assets", json={"contentType": "image/png", "description": "cat"}, headers=bearer(key)
        )
    asset = created.json()
    s3.stop()

    assert_problem(await _pexec(a, key, fid), 503)
    assert_problem(await _get(b, first.headers["location"]), 503)
    async with b.client("api.localhost") as api:
        put = await api.put(
            httpx.URL(asset["uploadUrl"]).raw_path.decode(),
            content=ASSET,
            headers={"Content-Type": "image/png", DESCRIPTION_HEADER: "cat"},
        )
    assert_problem(put, 503)
    await worker.stop()
    for gateway in (a, b):
        assert "Traceback" not in gateway.output()
