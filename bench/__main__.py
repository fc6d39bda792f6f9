"""``python -m bench run``: every scenario in one run, on loopback, server and load pinned apart.

    python -m bench run [--quick] [--scenarios a,b] [--duration S] [--out DIR]

Writes ``<out>/<timestamp>.json``, ``.md`` (also printed) and ``.png`` (p50/p99 against offered
load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import tools
from bench.plot import plot
from bench.procs import ROOT, cpu_layout
from bench.report import markdown, targets, turn2_targets
from bench.runner import Plan, generator_bound, run, work_dir_for
from bench.scenarios import ALL, Context, in_run_order

RESULTS = ROOT / "bench" / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the scenarios and write JSON, markdown and PNG")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (about a second per measurement)")
    p.add_argument("--scenarios", default=",".join(ALL), help=f"comma-separated subset of: {', '.join(ALL)}")
    p.add_argument("--duration", type=float, help="closed-loop seconds per subject (default 10, quick 1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    p.add_argument("--keep-work", action="store_true", help="keep the processes' logs and data directories")
    p = sub.add_parser("report", help="write the .md and .png of a results .json again (after a report change)")
    p.add_argument("json", type=Path)
    p = sub.add_parser("clients", help="the proxy's upstream client: httpx AsyncClient vs the lean httptools one")
    p.add_argument("--duration", type=float, default=5.0)
    p = sub.add_parser("profile", help="py-spy the gateway and worker of pexec-embedded under wrk load")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=RESULTS / "profile")
    p.add_argument("--native", action="store_true", help="include C/Cython frames (grpc, uvloop, protobuf)")
    p.add_argument("--redis", action="store_true", help="profile pexec-redis-1p (Redis queue) instead")
    return parser


def _machine(ctx: Context) -> dict[str, Any]:
    from cext.hotpath import IMPLEMENTATION

    return {
        "cpus": len(os.sched_getaffinity(0)),
        "server_cpus": sorted(ctx.server_cpus),
        "client_cpus": sorted(ctx.client_cpus),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hotpath": "compiled" if IMPLEMENTATION == "c" else "pure-Python twin",
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def command_run(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"bench: unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    names = in_run_order(names)
    problems = tools.ensure(["wrk", "nginx"])
    if "wrk" in problems:
        print(f"bench: {problems['wrk']}", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    server, client = cpu_layout()
    ctx = Context(work_dir_for(out, stamp), server, client)
    if server == client:
        ctx.notes.append("only one usable core: server and load generator share it, numbers are not comparable")
    if "nginx" in problems:
        ctx.notes.append(problems["nginx"])
    plan = Plan.make(args.quick, args.duration)
    record: dict[str, Any] = {"stamp": stamp, "machine": _machine(ctx), "plan": plan.__dict__}
    try:
        results = run(names, plan, ctx)
    finally:
        if not args.keep_work:
            shutil.rmtree(ctx.work_dir, ignore_errors=True)
    record.update({"results": results, "notes": ctx.notes})
    write(record, out / stamp)
    return 0


def write(record: dict[str, Any], base: Path) -> None:
    """The JSON (with the targets computed from the results), the markdown table, the plot."""
    record["targets"] = targets(record["results"])
    record["turn2_targets"] = turn2_targets(record["results"])
    base.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    table = markdown(record)
    base.with_suffix(".md").write_text(table)
    plot(record["results"], base.with_suffix(".png"), f"cfgate bench {record['stamp']} (open loop)")
    print(table)
    print(f"bench: wrote {base}.json, .md and .png")


def command_report(path: Path) -> int:
    record = json.loads(path.read_text())
    duration = record["plan"]["open_duration"]
    for entry in record["results"].values():
        for point in entry.get("open", []):
            point["generator_bound"] = generator_bound(point, duration)
    write(record, path.with_suffix(""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return command_run(args)
    if args.command == "report":
        return command_report(args.json)
    if args.command == "clients":
        from bench.clients import compare

        print(json.dumps(compare(RESULTS / ".clients", args.duration), indent=2))
        return 0
    if args.command == "profile":
        from bench.profile import profile

        print(profile(args.out, args.duration, args.native, args.redis))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
