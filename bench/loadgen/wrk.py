"""Closed-loop peak throughput with ``wrk`` (one thread, 64 keep-alive connections by default).

The request (method, headers, body) comes from a generated Lua script whose ``done`` hook prints
one JSON line with the counts and latency percentiles, so nothing depends on wrk's text layout.
wrk's own CPU share comes from its rusage when it is reaped.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.loadgen.target import Target
from bench.procs import BenchError

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def _lua(target: Target) -> str:
    lines = [f"wrk.method = {json.dumps(target.method)}"]
    if target.body:
        lines.append(f"wrk.body = {_lua_string(target.body.decode('latin-1'))}")
    for name, value in target.all_headers().items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    return "\n".join(lines) + "\n" + _DONE


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(
    target: Target, duration: float, cpus: set[int], work_dir: Path, *, connections: int = 64, threads: int = 1
) -> dict[str, Any]:
    """Run wrk against ``target``; requests/s, latency percentiles (ms), errors and wrk's CPU share."""
    script = work_dir / "wrk.lua"
    script.write_text(_lua(target))
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
        "--timeout", "5s", "-s", str(script), target.url,
    ]  # fmt: skip
    started = time.monotonic()
    popen = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    assert popen.stdout is not None
    output = popen.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH ")), None)
    if popen.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({popen.returncode}): {output[-500:]}")
    raw = json.loads(line[6:])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "errors": errors,
        "non_2xx": raw["status"],
        "latency_ms": {k: raw[k] / 1000 for k in ("p50", "p90", "p99", "p999", "max")},
        "generator_cpu": round((usage.ru_utime + usage.ru_stime) / wall, 3),
    }
