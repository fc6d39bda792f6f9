"""The gateway's own CPU per invocation, in one process, without sockets or gRPC.

    python -m bench.inproc [--invocations 30000] [--connections 64] [--tlb] [--rounds 3] [--redis URL]

A real ``Gateway`` (embedded SQLite, in-memory queue, or the Redis queue with ``--redis``) with a
function deployed and an invoke key made through its own API; ``--connections`` ``EdgeProtocol``
connections on fake transports send the bench's 1 KiB pexec (or TLB) POST back to back; one worker
session is attached to the dispatcher, and a fake worker answers every ``GatewayMessage``
(serialized and parsed as gRPC would) with a ``WorkerMessage`` carrying start, chunk and end
(serialized and parsed too).

What it measures is everything of the gateway's Python path between a request's bytes and its
answer's bytes — parser callbacks, hot-path decision, queue, dispatcher, outbox batching, protobuf
building, answer writing — with the socket I/O and grpc.aio hand-offs left out (the fake worker's
own protobuf work is in it too, a few us). It is the CPU time of one process with no client core
to starve, so it moves less with the machine's load than the bench scenarios; on a shared machine
still run A and B interleaved and compare the lower rounds. ``python -m bench profile`` and the
scenarios show the whole picture.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

from bench.loadgen.target import body_1k
from gateway import sample
from gateway.app import Gateway
from gateway.edge.protocol import EdgeProtocol
from gateway.settings import Settings
from invoker.sessions import WorkerGrant, WorkerSession
from protos.cfgate.worker.v1 import worker_pb2 as pb

CREDITS = 128
# What the echo container's answer looks like by the time the worker agent relays it.
ANSWER_HEADERS = (("content-type", "application/json"), ("content-length", "1024"))


class _State:
    """uvicorn's ``ServerState``, as the protocol sees it."""

    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.default_headers: list[tuple[bytes, bytes]] = [(b"server", b"cfgate")]
        self.total_requests = 0


class _Config:
    def __init__(self, app: Gateway) -> None:
        self.app = app


class _Transport:
    """Takes what the protocol writes; a response head starting means one answer (small bodies
    go out with their head in one write)."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.closing = False

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            self.client.answered()

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.write(part)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True


class _Client:
    def __init__(self, bench: _Bench, protocol: EdgeProtocol, request: bytes) -> None:
        self.bench = bench
        self.protocol = protocol
        self.request = request
        self.transport = _Transport(self)
        protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def send(self) -> None:
        self.protocol.data_received(self.request)

    def answered(self) -> None:
        self.bench.done += 1
        if self.bench.sent < self.bench.target:
            self.bench.sent += 1
            self.bench.loop.call_soon(self.send)  # as the next read event would
        elif self.bench.done >= self.bench.target:
            self.bench.finished.set()


class _Bench:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sent = 0
        self.done = 0
        self.target = 0
        self.finished = asyncio.Event()


async def _worker(gateway: Gateway, session: WorkerSession) -> None:
    dispatcher = gateway.invocations.dispatcher
    while (message := await session.next_message()) is not None:
        received = pb.GatewayMessage.FromString(message.SerializeToString())
        answer = pb.WorkerMessage()
        for item in received.invocations:
            start = answer.starts.add(request_id=item.request_id, status=200, kind=pb.ResultKind.DIRECT)
            for key, value in ANSWER_HEADERS:
                start.headers.add(key=key, value=value)
            answer.chunks.add(request_id=item.request_id, data=item.body)
            answer.ends.add(request_id=item.request_id)
        answer.credits = len(received.invocations)
        await dispatcher.on_worker_message(session, pb.WorkerMessage.FromString(answer.SerializeToString()))


async def _setup(gateway: Gateway) -> tuple[str, str, str]:
    transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.localhost") as http:
        token = await sample.admin_token(http)
        admin = {"Host": "api.localhost", "Authorization": f"Bearer {token}"}
        function = {"name": "echo", "inferenceUrl": "/echo", "inferencePort": 9, "containerImage": "cfgate/echo:1"}
        created = await http.post("/v2/nvcf/functions", json=function, headers=admin)
        dto = created.json()["function"]
        spec = {"gpu": "CPU", "instanceType": "cfgate.local", "minInstances": 0, "maxInstances": 1}
        url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
        deployed = await http.post(url, json={"deploymentSpecifications": [spec]}, headers=admin)
        assert deployed.status_code == 200, deployed.text
        key = await sample.invoke_key(http, token, "bench@cfgate.local")
        return dto["id"], dto["versionId"], key


def _request(function_id: str, key: str, tlb: bool) -> bytes:
    body = body_1k()
    if tlb:
        host, path = f"{function_id}.invocation.localhost", "/echo"
    else:
        host, path = "invocation.localhost", f"/v2/nvcf/pexec/functions/{function_id}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def measure(invocations: int, connections: int, tlb: bool, rounds: int, redis: str | None = None) -> list[float]:
    data = Path(tempfile.mkdtemp(prefix="cfgate-inproc-"))
    values: dict[str, Any] = {"data_dir": data / "data", "grpc_port": 0}
    if redis:
        values["redis"] = redis
    gateway = Gateway(Settings.load(values, env={}), owns_process=True)
    await gateway.startup()
    try:
        function_id, version_id, key = await _setup(gateway)
        route = gateway.runtime.routes.get(function_id)
        assert route is not None
        grant = WorkerGrant(function_id, version_id, "echo", route.nca_id, "/echo", 9)
        session = WorkerSession("bench-session", "bench-instance", grant, CREDITS)
        dispatcher = gateway.invocations.dispatcher
        await dispatcher.attach(session)
        session.credits = CREDITS
        serving = asyncio.ensure_future(_worker(gateway, session))
        loop = asyncio.get_running_loop()
        request = _request(function_id, key, tlb)
        state, config = _State(), _Config(gateway)
        results = []
        for _ in range(rounds + 1):  # the first round warms up
            bench = _Bench(loop)
            clients = [_Client(bench, EdgeProtocol(config, state, {}, loop), request) for _ in range(connections)]
            bench.target = invocations
            bench.sent = connections
            gc.collect()
            started = time.process_time()
            for client in clients:
                client.send()
            await bench.finished.wait()
            results.append((time.process_time() - started) / invocations * 1e6)
            for client in clients:
                client.protocol.connection_lost(None)
        session.close()
        await dispatcher.detach(session, "bench over")
        await serving
        return results[1:]
    finally:
        await gateway.shutdown()
        shutil.rmtree(data, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invocations", type=int, default=30000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tlb", action="store_true", help="direct invocation (TLB) instead of pexec")
    parser.add_argument("--redis", help="a Redis URL: the gateway queues through Redis (a throwaway database!)")
    args = parser.parse_args()
    results = uvloop.run(measure(args.invocations, args.connections, args.tlb, args.rounds, args.redis))
    what = ("TLB" if args.tlb else "pexec") + (" (Redis queue)" if args.redis else "")
    print(f"{what}: gateway CPU us per invocation, in process: {' '.join(f'{r:.1f}' for r in results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
