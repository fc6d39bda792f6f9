"""``python -m bench clients``: the proxy's upstream client, httpx ``AsyncClient`` vs the lean one.

Both send the proxy's request (1 KiB POST, keep-alive pool of 64) to the echo container on the
client core from this process pinned to the server core, 64 requests in flight, and report
requests/s and this process's CPU time per request — what one proxied request costs the gateway
on the upstream side. gateway/proxy.py uses the cheaper one.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench.loadgen.target import body_1k
from bench.procs import LOOPBACK, Proc, cpu_layout, free_port, python, wait_port
from invoker.worker.http_client import HttpClient

Send = Callable[[], Awaitable[None]]


async def _drive(send: Send, seconds: float, concurrency: int = 64) -> dict[str, float]:
    count = 0
    until = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal count
        while time.monotonic() < until:
            await send()
            count += 1

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    wall = time.monotonic() - began
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage1.ru_utime - usage0.ru_utime + usage1.ru_stime - usage0.ru_stime
    return {"rps": round(count / wall, 1), "cpu_us_per_request": round(cpu / count * 1e6, 1)}


async def _compare(port: int, seconds: float) -> dict[str, dict[str, float]]:
    body = body_1k()
    headers = [("Host", f"{LOOPBACK}:{port}"), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    lean = HttpClient(LOOPBACK, port, max_connections=64)

    async def lean_send() -> None:
        async with await lean.request("POST", "/echo", headers, body) as response:
            await response.read()

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=f"http://{LOOPBACK}:{port}", limits=limits) as client:

        async def httpx_send() -> None:
            async with client.stream("POST", "/echo", content=body, headers={"Content-Type": "application/json"}) as r:
                await r.aread()

        results = {"httpx": await _drive(httpx_send, seconds), "lean": await _drive(lean_send, seconds)}
    lean.close()
    return results


def compare(work_dir: Path, seconds: float = 5.0) -> dict[str, Any]:
    work_dir.mkdir(parents=True, exist_ok=True)
    server, client = cpu_layout()
    port = free_port()
    echo = Proc("clients-echo", python("bench.servers.echo", "--port", str(port)), client, work_dir)
    try:
        wait_port(port, echo)
        os.sched_setaffinity(0, server)
        return uvloop.run(_compare(port, seconds))
    finally:
        echo.stop()
