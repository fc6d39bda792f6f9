"""Input assets reach the container through real parts with default settings: a ``cfgate serve``
process (no ``--public-url``), the worker agent as its own process and a real inference server.

The gateway hands the worker relative asset URLs and announces its listen address
(``http://127.0.0.1:<port>``) at Register; the download must still reach the api service, which
is chosen by Host (``api.<domain>``), not by that address.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson

from tests.control.helpers import deployment_body, function_body
from tests.support.echo_server import EchoServer
from tests.support.serve_process import ServeProcess, client, invoke_key, serve_process, wait_active

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16 + b"\x00end"


@asynccontextmanager
async def worker_process(
    gateway: ServeProcess, token: str, function_id: str, echo: EchoServer, work_dir: Path, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CFGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    with open(work_dir.parent / "worker.log", "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "invoker.worker",
            "--gateway", gateway.grpc_target,
            "--token", token,
            "--function-id", function_id,
            "--inference-url", echo.url,
            "--health-url", f"{echo.url}/health",
            "--work-dir", str(work_dir),
            *extra,
            cwd=ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def deployed_function(gateway: ServeProcess, token: str, **function: str) -> tuple[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    async with client(gateway, "api.localhost") as api:
        created = await api.post("/v2/nvcf/functions", json=function_body(**function), headers=auth)
        assert created.status_code == 200, created.text
        fid, vid = created.json()["function"]["id"], created.json()["function"]["versionId"]
        url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        deployed = await api.post(url, json=deployment_body(), headers=auth)
        assert deployed.status_code == 200, deployed.text
    return fid, vid


async def uploaded_asset(gateway: ServeProcess, key: str, content: bytes) -> str:
    """``POST /v2/nvcf/assets`` then a PUT of ``content`` to its ``uploadUrl``; the asset id."""
    async with client(gateway, "api.localhost") as api:
        created = await api.post(
            "/v2/nvcf/assets",
            json={"contentType": "image/png", "description": "input"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert created.status_code == 200, created.text
        asset = created.json()
        # The uploadUrl names api.localhost:<port>: sent to the listening socket with that Host.
        upload = httpx.URL(asset["uploadUrl"])
        assert upload.host == "api.localhost" and upload.port == gateway.port
        put = await api.put(
            upload.raw_path.decode(),
            content=content,
            headers={"Content-Type": "image/png", "x-amz-meta-nvcf-asset-description": "input"},
        )
        assert put.status_code == 200, put.text
    return str(asset["assetId"])


async def test_the_container_reads_an_uploaded_input_asset_with_default_settings(tmp_path: Path) -> None:
    with serve_process(tmp_path) as gateway:
        token = gateway.admin_token()
        fid, vid = await deployed_function(gateway, token, inferenceUrl="/assets?content=1")
        key = await invoke_key(gateway, token)
        asset_id = await uploaded_asset(gateway, key, PAYLOAD)
        async with EchoServer() as echo, worker_process(gateway, token, fid, echo, tmp_path / "work"):
            await wait_active(gateway, token, fid, vid)
            async with client(gateway, "invocation.localhost") as invocation:
                response = await invocation.post(
                    f"/v2/nvcf/pexec/functions/{fid}",
                    json={},
                    headers={"Authorization": f"Bearer {key}", "NVCF-INPUT-ASSET-REFERENCES": asset_id},
                )
    assert response.status_code == 200, response.text
    assert response.headers["nvcf-status"] == "fulfilled"
    seen = orjson.loads(response.content)
    assert seen["ids"] == asset_id
    assert seen["dir"] == str(tmp_path / "work" / "inputAssets" / response.headers["nvcf-reqid"])
    assert list(seen["contents"]) == [asset_id]
    assert base64.b64decode(seen["contents"][asset_id]) == PAYLOAD
