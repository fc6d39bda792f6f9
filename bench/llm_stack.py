"""The LLM stack for ``llm-stream``: ``cfgate serve`` (server cores), the sample OpenAI container
(``gateway.llm.container``) and its ``cfgate worker`` (client cores), the LLM function, its
deployment and an invoke key created through the API (``gateway.sample``), as ``bench.stack`` does
for the echo function."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import LOOPBACK, Proc, free_port, python, wait_port
from bench.stack import WORKER_CONCURRENCY, start_gateway, worker_flags
from gateway import sample

# Per token and before the first one ("prefill"): the container, not the gateway, sets the pace.
TOKEN_DELAY = 0.002
FIRST_DELAY = 0.02


@dataclass
class LlmStack:
    gateway: Proc
    port: int
    container_port: int
    function: sample.SampleFunction
    key: str
    procs: list[Proc] = field(default_factory=list)

    @property
    def container(self) -> Proc:
        return self.procs[0]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def start_llm_stack(name: str, server_cpus: set[int], client_cpus: set[int], work_dir: Path) -> LlmStack:
    procs: list[Proc] = []
    try:
        container_port = free_port()
        argv = python("gateway.llm.container", "--port", str(container_port), "--delay", str(TOKEN_DELAY))
        argv += ["--first-delay", str(FIRST_DELAY)]
        procs.append(Proc(f"{name}-container", argv, client_cpus, work_dir))
        gateway, port, worker_port = start_gateway(name, server_cpus, work_dir)
        procs.append(gateway)
        wait_port(container_port, procs[0])
        function, key = asyncio.run(_create(f"http://{LOOPBACK}:{port}", container_port))
        worker_argv = sample.worker_command(f"{LOOPBACK}:{worker_port}", function, container_port, WORKER_CONCURRENCY)
        procs.append(
            Proc(f"{name}-worker", worker_argv + worker_flags(), client_cpus, work_dir, sample.worker_env(function, {}))
        )
        asyncio.run(_wait_active(f"http://{LOOPBACK}:{port}", function))
    except BaseException:
        for proc in reversed(procs):
            proc.stop()
        raise
    return LlmStack(gateway, port, container_port, function, key, procs)


async def _create(base: str, port: int) -> tuple[sample.SampleFunction, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        token = await sample.admin_token(http)
        function = await sample.create_function(
            http,
            token,
            port,
            name="sample-llm",
            inference_url="/v1/chat/completions",
            max_concurrency=WORKER_CONCURRENCY,
            extra_fields=sample.LLM_FIELDS,
        )
        return function, await sample.invoke_key(http, token, "bench@cfgate.local")


async def _wait_active(base: str, function: sample.SampleFunction) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await sample.wait_active(http, function)
