"""Closed-loop gRPC unary load: ``concurrency`` callers on one channel, each calling again as soon
as its answer arrives, for ``duration`` seconds. Reports calls/s, errors, latency percentiles and
the generator's CPU share (one grpc.aio channel is itself CPU-bound near a few thousand calls/s:
the report flags a generator above 90 % of a core).

    python -m bench.loadgen.grpc_unary '<json spec>'   # prints one JSON result line
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop

from bench.loadgen.openloop import PERCENTILES, _pct, run_child


@dataclass(frozen=True)
class GrpcTarget:
    target: str  # host:port
    method: str  # /package.Service/Method
    metadata: list[tuple[str, str]] = field(default_factory=list)


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    metadata = tuple((k, v) for k, v in spec["metadata"])
    body = b"x" * int(spec["bytes"])
    latencies: list[float] = []
    errors: dict[str, int] = {}
    async with grpc.aio.insecure_channel(spec["target"]) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(spec["method"])
        await call(body, metadata=metadata, timeout=30)  # connected and warm
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        until = started + float(spec["duration"])

        async def caller() -> None:
            while (now := time.perf_counter()) < until:
                try:
                    await call(body, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                    continue
                latencies.append(time.perf_counter() - now)

        await asyncio.gather(*(caller() for _ in range(int(spec["concurrency"]))))
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    ordered = sorted(latencies)
    return {
        "rps": round(len(latencies) / wall, 1),
        "calls": len(latencies),
        "errors": sum(errors.values()),
        "error_codes": errors,
        "latency_ms": {name: _pct(ordered, q) for name, q in PERCENTILES.items()},
        "generator_cpu": round(cpu / wall, 3),
        "concurrency": int(spec["concurrency"]),
    }


def run_grpc_unary(
    target: GrpcTarget,
    duration: float,
    cpus: set[int],
    concurrency: int = 64,
    size: int = 1024,
) -> dict[str, Any]:
    spec = {"target": target.target, "method": target.method, "metadata": target.metadata, "duration": duration}
    spec.update({"concurrency": concurrency, "bytes": size})
    return run_child("bench.loadgen.grpc_unary", spec, cpus, timeout=duration + 90)


def main() -> None:
    print(json.dumps(uvloop.run(_run(json.loads(sys.argv[1])))), flush=True)


if __name__ == "__main__":
    main()
