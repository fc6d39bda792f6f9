"""Throughput of the worker's HTTP client alone against the echo server (not collected by pytest).

    python -m tests.worker.bench_http_client [--seconds 3] [--connections 1,16,64] [--body 1024]

The echo server runs in a subprocess pinned to CPU 0 (uvloop); the client runs here, pinned to
CPU 1, on uvloop. Each run keeps ``connections`` requests in flight (one task per connection, each
sending ``POST /echo?plain=1`` with a JSON body and reading the answer) and reports requests/s and the
client's own CPU time per request (which does not depend on how fast the server is).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import uvloop

from invoker.worker.http_client import HttpClient

ROOT = Path(__file__).resolve().parents[2]


async def run(port: int, connections: int, seconds: float, body: bytes) -> tuple[float, float]:
    client = HttpClient("127.0.0.1", port, max_connections=connections)
    headers = [
        ("Host", f"127.0.0.1:{port}"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("NVCF-REQID", "3f1c2b4a-0000-4000-8000-000000000000"),
    ]
    count = 0
    stop = False

    async def worker() -> None:
        nonlocal count
        while not stop:
            async with await client.request("POST", "/echo?plain=1", headers, body) as response:
                async for _ in response:
                    pass
            count += 1

    # Warm up the connections, then measure.
    tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
    await asyncio.sleep(0.5)
    start_count, start_wall, start_cpu = count, time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    done, wall, cpu = count - start_count, time.perf_counter() - start_wall, time.process_time() - start_cpu
    stop = True
    await asyncio.gather(*tasks)
    client.close()
    return done / wall, cpu / done * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--body", type=int, default=1024, help="request body size in bytes")
    args = parser.parse_args()
    server = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "tests.support.echo_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        body = b'{"input": "' + b"x" * max(0, args.body - 13) + b'"}'
        for connections in (int(c) for c in args.connections.split(",")):
            rate, cpu_us = uvloop.run(run(port, connections, args.seconds, body))
            print(f"connections={connections:3d}  {rate:9.0f} requests/s  client CPU {cpu_us:6.1f} µs/request")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
