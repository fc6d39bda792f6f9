"""The ``hotpath`` scenario: the pytest-benchmark micro-benchmark of both twins, pinned to the
server core; the mean time of each case per twin, and what the compiled one buys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.procs import ROOT, BenchError


def run_hotpath(cpus: set[int], work_dir: Path, quick: bool) -> dict[str, Any]:
    out = work_dir / "hotpath.json"
    argv = [
        sys.executable, "-m", "pytest", str(ROOT / "bench" / "test_hotpath_bench.py"), "-q",
        "-p", "no:cacheprovider", "--benchmark-only", f"--benchmark-json={out}",
        "--benchmark-max-time", "0.05" if quick else "0.5",
    ]  # fmt: skip
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, cpus)
    )
    if done.returncode != 0 or not out.exists():
        raise BenchError(f"hotpath benchmark failed ({done.returncode}): {done.stdout[-800:]}")
    cases: dict[str, dict[str, float]] = {}
    for bench in json.loads(out.read_text())["benchmarks"]:
        name = bench["name"].split("[")[0].removeprefix("test_")
        twin = bench["param"]
        cases.setdefault(name, {})[f"{twin}_us"] = round(bench["stats"]["mean"] * 1e6, 4)
    for times in cases.values():
        if times.get("c_us") and times.get("py_us"):
            times["speedup"] = round(times["py_us"] / times["c_us"], 2)
    return {"status": "ok", "cases": cases}
