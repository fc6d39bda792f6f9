"""A/B of two source trees on the same stack, rounds interleaved: CPU us per request.

    python -m bench.ab SCENARIO TREE_A TREE_B [--rounds 4] [--seconds 3]

SCENARIO is ``pexec``, ``tlb``, ``redis`` (pexec on a throwaway redis-server; its CPU counts with
the gateway's) or ``proxy`` (cfgate's upstream proxy to the echo app). Each tree (a checkout or
``git archive`` of the code to compare, compiled extensions included) gets its own stack, started
once from that tree's sources and kept up; then wrk drives A, B, A, B, ... for ``--seconds`` each.
On a shared machine rps follows whatever else runs, CPU time per request much less, and rounds
taken in turn see the same load: compare the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SCENARIOS = ("pexec", "tlb", "redis", "proxy")

# Runs inside one tree (its sources first on sys.path): start the stack, then one wrk round per
# line read from stdin, one JSON line out per round.
_CHILD = r"""
import json, sys
from pathlib import Path
from bench import redis
from bench.loadgen.wrk import run_wrk
from bench.procs import LOOPBACK, CpuMeter, Proc, cpu_layout, free_port, python, wait_port
from bench.scenarios import _echo_body_target, _pexec, _tlb
from bench.stack import start_gateway, start_stack

scenario, seconds, work = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
server, client = cpu_layout()
stops, agents = [], []
if scenario == "proxy":
    up = free_port()
    upstream = Proc("ab-upstream", python("bench.servers.echo", "--port", str(up)), client, work)
    stops.append(upstream.stop)
    wait_port(up, upstream)
    env = {"CFGATE_UPSTREAMS": f"api-keys=http://{LOOPBACK}:{up}"}
    gateway, port, _ = start_gateway("ab", server, work, env=env)
    stops.append(gateway.stop)
    target, measured = _echo_body_target(port, "/v1/echo", "api-keys.localhost"), [gateway]
else:
    extra = []
    if scenario == "redis":
        store = redis.start(client, work, "ab")
        stops.append(store.proc.stop)
        extra = ["--redis", store.url]
    stack = start_stack("ab", server, client, work, extra=extra)
    stops.append(stack.stop)
    target = _tlb(stack) if scenario == "tlb" else _pexec(stack)
    measured = [stack.gateway] + ([store.proc] if scenario == "redis" else [])
    agents = [stack.worker]
try:
    run_wrk(target, 2, client, work)
    print("READY", flush=True)
    for _ in sys.stdin:
        meter, agent_meter = CpuMeter(measured), CpuMeter(agents)
        done = run_wrk(target, seconds, client, work)
        rps = done["rps"]
        server_cpu, agent_cpu = sum(meter.shares().values()), sum(agent_meter.shares().values())
        print(json.dumps({"rps": rps, "server_us": server_cpu / rps * 1e6, "agent_us": agent_cpu / rps * 1e6,
                          "errors": done["errors"]}), flush=True)
finally:
    for stop in reversed(stops):
        stop()
"""


def _start(tree: Path, scenario: str, seconds: float, work: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, scenario, str(seconds), str(work)],
        cwd=tree,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("READY"):
            return child
    raise SystemExit(f"bench.ab: the stack of {tree} did not start (exit {child.wait()})")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("trees", nargs=2, type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    results: dict[Path, list[dict[str, Any]]] = {tree: [] for tree in args.trees}
    with tempfile.TemporaryDirectory(prefix="cfgate-ab-") as work:
        children = []
        try:
            for i, tree in enumerate(args.trees):
                folder = Path(work) / str(i)
                folder.mkdir()
                children.append(_start(tree.resolve(), args.scenario, args.seconds, folder))
            for round_ in range(args.rounds):
                for tree, child in zip(args.trees, children, strict=True):
                    assert child.stdin is not None and child.stdout is not None
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    got = json.loads(child.stdout.readline())
                    results[tree].append(got)
                    print(
                        f"round {round_ + 1} {tree}: {got['rps']:.0f} rps, server {got['server_us']:.0f} us/req, "
                        f"agent {got['agent_us']:.0f} us/req, errors {got['errors']}",
                        flush=True,
                    )
        finally:
            for child in children:
                if child.stdin is not None:
                    child.stdin.close()
                child.wait(timeout=60)
    for tree, rounds in results.items():
        server = statistics.median(r["server_us"] for r in rounds)
        agent = statistics.median(r["agent_us"] for r in rounds)
        print(f"{tree}: median server {server:.1f} us/req, agent {agent:.1f} us/req over {len(rounds)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
