"""Streaming load: ``concurrency`` clients each fetch an event stream after another for a while.

Reports the events relayed per second (all streams together) and the time to first event of each
stream (from sending the request to the first ``data:`` line), plus the generator's CPU share.

    python -m bench.loadgen.sse '<json spec>'   # prints one JSON result line
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import httptools
import uvloop

from bench.loadgen.openloop import PERCENTILES, _pct, run_child
from bench.loadgen.target import Target


class _Stream(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.events = 0
        self.first: float | None = None
        self.status = 0
        self.done: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        found = body.count(b"data:")
        if found and self.first is None:
            self.first = time.perf_counter()
        self.events += found

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("stream connection lost"))


async def _client(port: int, request: bytes, until: float, ttfe: list[float], counts: list[int]) -> int:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(_Stream, "127.0.0.1", port)
    errors = 0
    while time.perf_counter() < until:
        stream.done, stream.first, stream.events = loop.create_future(), None, 0
        sent = time.perf_counter()
        assert stream.transport is not None
        stream.transport.write(request)
        try:
            await asyncio.wait_for(stream.done, 30)
        except (ConnectionError, TimeoutError):
            return errors + 1
        if stream.status != 200 or stream.first is None:
            errors += 1
            continue
        ttfe.append(stream.first - sent)
        counts.append(stream.events)
    assert stream.transport is not None
    stream.transport.close()
    return errors


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    request = spec["request"].encode("latin-1")
    ttfe: list[float] = []
    counts: list[int] = []
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    until = began + float(spec["duration"])
    clients = [_client(int(spec["port"]), request, until, ttfe, counts) for _ in range(int(spec["concurrency"]))]
    errors = sum(await asyncio.gather(*clients))
    span = time.perf_counter() - began
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage1.ru_utime - usage0.ru_utime + usage1.ru_stime - usage0.ru_stime
    ordered = sorted(ttfe)
    return {
        "tool": "sse",
        "concurrency": spec["concurrency"],
        "streams": len(counts),
        "events": sum(counts),
        "events_per_s": round(sum(counts) / span, 1),
        "errors": errors,
        "ttfe_ms": {name: _pct(ordered, q) for name, q in PERCENTILES.items()},
        "generator_cpu": round(cpu / span, 3),
    }


def run_sse(target: Target, duration: float, cpus: set[int], concurrency: int = 16) -> dict[str, Any]:
    spec = {"port": target.port, "request": target.raw_request().decode("latin-1")}
    spec.update({"duration": duration, "concurrency": concurrency})
    return run_child("bench.loadgen.sse", spec, cpus, timeout=duration + 90)


def main() -> None:
    print(json.dumps(uvloop.run(_run(json.loads(sys.argv[1])))), flush=True)


if __name__ == "__main__":
    main()
