"""Who hosts the edge protocol: uvicorn's server, or a bare ``loop.create_server`` of our own?

``python -m bench.hosting [--seconds S]`` serves a 13-byte hello three ways, one after the other,
each in a child pinned to the server core and driven by wrk from the client core, and prints the
server's CPU µs per request (its share of a core ÷ rps; the number that survives a noisy machine):

- ``uvicorn-asgi``: uvicorn's own httptools protocol and a raw ASGI app (the edge before this work);
- ``edge-under-uvicorn``: ``gateway.edge.protocol.EdgeProtocol`` as uvicorn's ``http=`` class;
- ``edge-own-server``: the same protocol under ``loop.create_server`` with no uvicorn at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

from bench.procs import free_port

HELLO = b"Hello, world!"


class _State:
    """What uvicorn's ``ServerState`` offers a protocol (for the own-server variant)."""

    def __init__(self) -> None:
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.default_headers: list[tuple[bytes, bytes]] = []
        self.total_requests = 0


class _HelloApp:
    def __init__(self) -> None:
        from gateway.edge.budget import ByteBudget
        from gateway.settings import Settings

        self.settings = Settings()
        self.budget = ByteBudget(0)

    def hot_handler(self, request: Any) -> Any:
        return self._hello

    async def _hello(self, exchange: Any) -> None:
        exchange.respond(200, [(b"content-type", b"text/plain"), (b"content-length", b"13")], HELLO)

    async def control(self, scope: Any, receive: Any, send: Any, decision: object) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # the ASGI variant
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": HELLO})


def _serve(kind: str, port: int) -> None:
    import uvicorn
    import uvloop

    from gateway.edge.protocol import EdgeProtocol

    app = _HelloApp()
    if kind == "edge-own-server":

        class _Config:
            pass

        config = _Config()
        config.app = app  # type: ignore[attr-defined]
        state = _State()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(lambda: EdgeProtocol(config, state, {}, loop), "127.0.0.1", port)
            async with server:
                await server.serve_forever()

        uvloop.run(main())
        return
    http: Any = EdgeProtocol if kind == "edge-under-uvicorn" else "httptools"
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=http,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


def _measure(kind: str, seconds: float, server_cpu: int, client_cpu: int) -> tuple[float, float]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.hosting", "--serve", kind, "--port", str(port)],
        preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        wrk = ["wrk", "-t1", "-c64", f"-d{int(seconds)}s", f"http://127.0.0.1:{port}/"]
        subprocess.run(wrk, capture_output=True, preexec_fn=lambda: os.sched_setaffinity(0, {client_cpu}))  # warm-up
        before = _cpu(child.pid)
        done = subprocess.run(
            wrk, capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {client_cpu})
        )
        used = _cpu(child.pid) - before
        rps = float(next(line for line in done.stdout.splitlines() if "Requests/sec" in line).split()[-1])
        return rps, used / (rps * seconds) * 1e6
    finally:
        child.terminate()
        child.wait()


def _cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port)
        return
    cores = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cores[0], cores[-1]
    kinds = ["uvicorn-asgi", "edge-under-uvicorn", "edge-own-server"]
    for round_ in range(args.rounds):
        for kind in kinds:
            rps, us = _measure(kind, args.seconds, server_cpu, client_cpu)
            print(f"round {round_ + 1}  {kind:20s} {rps:10.0f} rps  {us:6.1f} us/req", flush=True)


if __name__ == "__main__":
    main()
