"""``python -m bench profile``: where the pexec path spends its time under load.

Starts the pexec-embedded stack (``--grpc``: the grpc-unary one, driven by the gRPC unary load
generator), drives it with wrk (closed loop), and records the gateway and the
worker agent with py-spy (``--native`` off, GIL-holding samples only off: wall time of the main
thread). Writes collapsed stacks and flame graphs under the output directory and prints the
functions with the most self time and the most inclusive time for each process.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path

from bench import redis, tools
from bench.loadgen.grpc_unary import GrpcTarget, run_grpc_unary
from bench.loadgen.wrk import run_wrk
from bench.procs import LOOPBACK, BenchError, CpuMeter, cpu_layout
from bench.scenarios import Context, _pexec
from bench.servers.grpc_echo import METHOD as GRPC_ECHO_METHOD
from bench.stack import Stack, start_grpc_stack, start_stack


def _record(pid: int, seconds: float, out: Path, fmt: str, native: bool = False) -> subprocess.Popen[bytes]:
    beside = Path(sys.executable).parent / "py-spy"
    spy = str(beside) if beside.exists() else tools.which("py-spy")
    if spy is None:
        raise BenchError("py-spy is not installed: pip install -e '.[bench]'")
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "250"]
    argv += ["--format", fmt, "--output", str(out), "--nonblocking", "--gil"] + (["--native"] if native else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed ("raw") output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def profile(out: Path, seconds: float, native: bool = False, with_redis: bool = False, grpc: bool = False) -> str:
    """``with_redis``: the pexec-redis-1p stack (throwaway redis-server on the client core)."""
    out.mkdir(parents=True, exist_ok=True)
    server, client = cpu_layout()
    if grpc:
        return _profile_grpc(out, seconds, native, server, client)
    ctx = Context(out, server, client)
    store = redis.start(client, out, "profile") if with_redis else None
    try:
        stack = start_stack("profile", server, client, out, extra=["--redis", store.url] if store else [])
    except BaseException:
        if store is not None:
            store.proc.stop()
        raise
    try:
        target = _pexec(stack)
        run_wrk(target, 2, client, out)
        spies = _spies(stack, seconds, out, native)
        meter = CpuMeter([stack.gateway, stack.worker, stack.procs[0]])
        result: dict[str, object] = {}
        load = threading.Thread(target=lambda: result.update(run_wrk(target, seconds, client, ctx.work_dir)))
        load.start()
        load.join()
        shares = meter.shares()
        for spy in spies.values():
            spy.wait(timeout=seconds + 30)
        rps = float(result.get("rps") or 0)  # type: ignore[arg-type]
        return _report(f"wrk: {rps:.0f} rps", rps, shares, spies, out)
    finally:
        stack.stop()
        if store is not None:
            store.proc.stop()


def _profile_grpc(out: Path, seconds: float, native: bool, server: set[int], client: set[int]) -> str:
    stack, grpc_port = start_grpc_stack("profile-grpc", server, client, out)
    try:
        metadata = [("authorization", f"Bearer {stack.key}"), ("function-id", stack.function.function_id)]
        target = GrpcTarget(f"{LOOPBACK}:{grpc_port}", GRPC_ECHO_METHOD, metadata)
        run_grpc_unary(target, 2, client)
        spies = _spies(stack, seconds, out, native)
        meter = CpuMeter([stack.gateway, stack.worker, stack.procs[0]])
        result = run_grpc_unary(target, seconds, client)
        shares = meter.shares()
        for spy in spies.values():
            spy.wait(timeout=seconds + 30)
        rps = float(result.get("rps") or 0)
        return _report(f"grpc unary: {rps:.0f} calls/s", rps, shares, spies, out)
    finally:
        stack.stop()


def _spies(stack: Stack, seconds: float, out: Path, native: bool) -> dict[str, subprocess.Popen[bytes]]:
    return {
        "gateway": _record(stack.gateway.pid, seconds, out / "gateway.txt", "raw", native),
        "worker": _record(stack.worker.pid, seconds, out / "worker.txt", "raw", native),
    }


def _report(
    head: str, rps: float, shares: dict[str, float], spies: dict[str, subprocess.Popen[bytes]], out: Path
) -> str:
    per_request = {name: round(share / rps * 1e6) for name, share in shares.items()} if rps else {}
    report = [f"{head}, CPU shares {shares}, CPU us per request {per_request}"]
    for name in spies:
        report += [f"== {name}", summarise(out / f"{name}.txt")]
    return "\n".join(report)
