"""Invocations/s through one gateway process, memory queue vs Redis Streams queue, in one run.

``python -m bench.invoke_throughput [--seconds 10] [--concurrency 32]`` starts a throwaway
redis-server, then for each queue a gateway process (``python -m gateway serve``), an echo worker
process (the scripted worker of the tests, real gRPC) and a closed-loop HTTP/1.1 keep-alive
client (``concurrency`` connections, each sending the next pexec when the last one answered).
Prints one line per queue. Gateway, worker, client and Redis share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

from tests.cluster.conftest import Cluster
from tests.servers import RedisServer


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> int:
    writer.write(head + body)
    status_line = await reader.readline()
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    if not chunked:
        await reader.readexactly(length)
    else:
        while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
            await reader.readexactly(size + 2)
        await reader.readline()
    return int(status_line.split()[1])


async def closed_loop(port: int, path: str, key: str, concurrency: int, seconds: float) -> tuple[int, int]:
    body = b'{"hello":"world"}'
    head = (
        f"POST {path} HTTP/1.1\r\nHost: invocation.localhost\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    done = errors = 0
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            if await one_request(reader, writer, head, body) == 200:
                done += 1
            else:
                errors += 1
        writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return done, errors


ECHO_WORKER = """
import asyncio, sys
from tests.e2e.driver import ScriptedWorker

async def echo(worker, invocation):
    worker.answer(invocation.request_id, 200, invocation.body)

async def main():
    worker = ScriptedWorker(sys.argv[1], sys.argv[2], sys.argv[3], echo, int(sys.argv[4]))
    await worker.start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def measure(redis_url: str | None, seconds: float, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "data", redis_url or "")
        process = cluster.add()
        await cluster.bootstrap(process)
        fid, _ = await cluster.deployed_function(process)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", ECHO_WORKER, process.grpc_target, cluster.admin_token, fid, str(concurrency * 2)
        )
        try:
            path = f"/v2/nvcf/pexec/functions/{fid}"
            async with process.client() as client:
                for _ in range(200):  # the worker is attached once an invocation goes through
                    if (await client.post(path, json={}, headers=cluster.auth)).status_code == 200:
                        break
                    await asyncio.sleep(0.05)
            await closed_loop(process.port, path, cluster.invoke_key, concurrency, 1.0)  # warm up
            assert process.proc is not None
            cpu = _cpu_seconds(process.proc.pid)
            began = time.monotonic()
            done, errors = await closed_loop(process.port, path, cluster.invoke_key, concurrency, seconds)
            rate = done / (time.monotonic() - began)
            per_call = (_cpu_seconds(process.proc.pid) - cpu) / max(done, 1) * 1e6
            name = "redis" if redis_url else "memory"
            cost = f"gateway CPU {per_call:6.0f} us/invocation"
            print(f"{name:6s} queue: {rate:8.0f} invocations/s, {cost} ({errors} errors)")
            return rate
        finally:
            worker.kill()
            await worker.wait()
            process.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``): cost per invocation, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    redis = RedisServer().start()
    try:
        memory = await measure(None, args.seconds, args.concurrency)
        shared = await measure(redis.url, args.seconds, args.concurrency)
    finally:
        redis.close()
    print(orjson.dumps({"memory": round(memory), "redis": round(shared), "ratio": round(shared / memory, 3)}).decode())


if __name__ == "__main__":
    asyncio.run(main())
