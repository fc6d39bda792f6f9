"""LLM functions for the tests: the sample OpenAI container in process, an LLM function created
and deployed through the API, and its real worker agent as a child process."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn

from gateway import sample
from gateway.llm.container import SampleLlm
from tests.servers import find_free_port

MODEL = "cfgate-sample"
LIMITED_MODEL = "cfgate-limited"
STREAM_LIMITED_MODEL = "cfgate-stream-limited"


def llm_function_body(port: int, models: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    """An LLM function (functionType LLM, models[].llmConfig) served by the sample container on ``port``."""
    body: dict[str, Any] = {
        "name": "sample-llm",
        "inferenceUrl": "/v1/chat/completions",
        "inferencePort": port,
        "containerImage": "cfgate/sample-llm:latest",
        "functionType": "LLM",
        "models": models if models is not None else [{"name": MODEL, "llmConfig": {"uris": ["/v1"]}}],
        "health": {"protocol": "HTTP", "uri": "/health", "port": port, "timeout": "PT10S", "expectedStatusCode": 200},
    }
    body.update(overrides)
    return body


@asynccontextmanager
async def sample_container(
    models: tuple[str, ...] = (MODEL,), delay: float = 0.0
) -> AsyncIterator[tuple[SampleLlm, int]]:
    """The sample LLM container on a free loopback port, in this loop."""
    app = SampleLlm(models, delay)
    port = find_free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield app, port
    finally:
        server.should_exit = True
        await task


async def create_llm_function(http: httpx.AsyncClient, token: str, body: dict[str, Any]) -> sample.SampleFunction:
    """Create and deploy (one instance) through the control plane on ``api.localhost``."""
    admin = {"Host": "api.localhost", "Authorization": f"Bearer {token}"}
    created = await http.post("/v2/nvcf/functions", json=body, headers=admin)
    assert created.status_code == 200, created.text
    dto = created.json()["function"]
    fid, vid = dto["id"], dto["versionId"]
    spec = {
        "gpu": "CPU",
        "instanceType": "cfgate.local",
        "minInstances": 1,
        "maxInstances": 1,
        "maxRequestConcurrency": 8,
    }
    url = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
    deployed = await http.post(url, json={"deploymentSpecifications": [spec]}, headers=admin)
    assert deployed.status_code == 200, deployed.text
    return sample.SampleFunction(fid, vid, token)


@contextmanager
def worker_process(grpc_target: str, function: sample.SampleFunction, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The real worker agent (``python -m invoker.worker``) beside the container."""
    process = subprocess.Popen(
        sample.worker_command(grpc_target, function, port),
        env=sample.worker_env(function),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
