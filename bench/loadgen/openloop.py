"""Open-loop (constant-rate) load on uvloop with raw sockets and httptools.

Request *k* is due at ``t0 + k / rate`` whether or not earlier ones were answered; its latency is
measured from that intended time, so time spent waiting for a free connection or behind a slow
answer counts (no coordinated omission). A fixed pool of keep-alive connections carries them; a
request due while every connection is busy waits in a backlog (that wait is part of its latency).

No constant-rate tool (wrk2, vegeta) is packaged for this machine, and wrk's Lua hooks cannot
schedule by intended time, hence this generator. Being Python, it may saturate before the server:
it reports its own CPU share and ``send_lag_ms`` (how late due requests went out); the runner flags
a point as generator-bound when the share nears a full core.

    python -m bench.loadgen.openloop '<json spec>'   # prints one JSON result line
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import time
from collections import deque
from typing import Any

import httptools
import uvloop

from bench.loadgen.target import Target
from bench.procs import ROOT, BenchError


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.intended = 0.0
        self.status = 0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.gen.failed(self)
            if self.transport is not None:
                self.transport.abort()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self.gen.completed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)

    def send(self, request: bytes, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.busy = True
        self.transport.write(request)


class _Generator:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.host = "127.0.0.1"
        self.port = int(spec["port"])
        self.request = spec["request"].encode("latin-1")
        self.rate = float(spec["rate"])
        self.duration = float(spec["duration"])
        self.connections = int(spec.get("connections", 64))
        self.ssl: ssl.SSLContext | None = None
        if spec.get("tls"):  # the bench's own self-signed certificate: encrypted, not verified
            self.ssl = ssl.create_default_context()
            self.ssl.check_hostname = False
            self.ssl.verify_mode = ssl.CERT_NONE
        self.idle: list[_Conn] = []
        self.backlog: deque[float] = deque()
        self.latencies: list[float] = []
        self.lags: list[float] = []
        self.errors = 0
        self.non_2xx = 0
        self.outstanding = 0
        self._all_done: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port, ssl=self.ssl)
        self.idle.append(conn)

    def _dispatch(self, intended: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.lags.append(time.perf_counter() - intended)
            self.idle.pop().send(self.request, intended)
        else:
            self.backlog.append(intended)

    def _next(self, conn: _Conn) -> None:
        if self.backlog:
            conn.send(self.request, self.backlog.popleft())
        else:
            self.idle.append(conn)

    def completed(self, conn: _Conn) -> None:
        now = time.perf_counter()
        conn.busy = False
        self.latencies.append(now - conn.intended)
        if not 200 <= conn.status < 300:
            self.non_2xx += 1
        self._finish_one()
        self._next(conn)

    def failed(self, conn: _Conn) -> None:
        if conn.busy:
            conn.busy = False
            self.errors += 1
            self._finish_one()

    def lost(self, conn: _Conn) -> None:
        self.failed(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._open(loop))
        task.add_done_callback(self._reopened)

    def _reopened(self, task: asyncio.Task[None]) -> None:
        if task.exception() is None and self.backlog:
            self._next(self.idle.pop())

    def _finish_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    async def run(self) -> dict[str, Any]:
        await self.connect()
        loop = asyncio.get_running_loop()
        total = max(1, int(self.rate * self.duration))
        interval = 1.0 / self.rate
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter() + 0.01
        sent = 0
        while sent < total:
            now = time.perf_counter()
            due = min(total, int((now - t0) / interval) + 1) if now >= t0 else 0
            while sent < due:
                self._dispatch(t0 + sent * interval)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, t0 + sent * interval - time.perf_counter()))
        sending_done = time.perf_counter()
        self._all_done = loop.create_future()
        timed_out = 0
        if self.outstanding:
            try:
                await asyncio.wait_for(asyncio.shield(self._all_done), timeout=10.0)
            except TimeoutError:
                timed_out = self.outstanding
        end = time.perf_counter()
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        return self._result(total, sending_done - t0, end - t0, cpu, timed_out)

    def _result(self, total: int, send_span: float, span: float, cpu: float, timed_out: int) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        lags = sorted(self.lags)
        return {
            "tool": "openloop",
            "offered_rps": round(self.rate, 1),
            "sent": total,
            "completed": len(ordered),
            "achieved_rps": round(len(ordered) / span, 1) if span > 0 else 0.0,
            "errors": self.errors + timed_out + self.non_2xx,
            "non_2xx": self.non_2xx,
            "timeouts": timed_out,
            "latency_ms": {name: _pct(ordered, q) for name, q in PERCENTILES.items()},
            "send_lag_ms": {"p50": _pct(lags, 0.5), "p99": _pct(lags, 0.99)},
            "send_span_s": round(send_span, 3),
            "generator_cpu": round(cpu / span, 3) if span > 0 else 0.0,
        }


PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999, "max": 1.0}


def _pct(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))
    return round(ordered[index] * 1000, 3)


def run_openloop(target: Target, rate: float, duration: float, cpus: set[int], connections: int = 64) -> dict[str, Any]:
    """Run the generator in a child process pinned to ``cpus``; its JSON result."""
    spec = {"port": target.port, "request": target.raw_request().decode("latin-1"), "rate": rate}
    spec.update({"duration": duration, "connections": connections, "tls": target.scheme == "https"})
    return run_child("bench.loadgen.openloop", spec, cpus, timeout=duration + 60)


def run_child(module: str, spec: dict[str, Any], cpus: set[int], timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    if done.returncode != 0:
        raise BenchError(f"{module} failed ({done.returncode}): {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = uvloop.run(_Generator(spec).run())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
