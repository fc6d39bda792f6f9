"""The bench itself, on a tiny load (``python -m bench run --quick``), so that it cannot rot.

Real processes on loopback: wrk, the open-loop generator, the ceiling and echo servers, a real
``cfgate serve`` with its worker agent, cfgate's proxy and nginx, and the hot-path micro-benchmark.
Nothing here looks at how fast anything was, only that every measurement was made and written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import tools

ROOT = Path(__file__).resolve().parents[2]
RAY = importlib.util.find_spec("ray") is not None
# rayserve only for its skip path: a real Ray cluster takes minutes to start, too long for a smoke test.
SCENARIOS = ["ceiling", "pexec-embedded", "direct", "proxy", "hotpath"] + ([] if RAY else ["rayserve"])

# The whole quick run happens in the module fixture, inside the first test's time limit.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, bytes]:
    problems = tools.ensure(["wrk", "nginx"])
    if "wrk" in problems:
        if os.environ.get("CI") == "true":
            pytest.fail(problems["wrk"])
        pytest.skip(problems["wrk"])
    out = tmp_path_factory.mktemp("results")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--scenarios", ",".join(SCENARIOS), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stamp = next(out.glob("*.json")).stem
    record = json.loads((out / f"{stamp}.json").read_text())
    assert (out / f"{stamp}.md").read_text() in done.stdout
    return record, (out / f"{stamp}.md").read_text(), (out / f"{stamp}.png").read_bytes()


def _nginx_expected() -> bool:
    return tools.which("nginx") is not None


def test_every_http_subject_has_closed_and_open_loop_numbers(run: tuple[dict[str, Any], str, bytes]) -> None:
    record, _, _ = run
    results = record["results"]
    expected = ["ceiling", "pexec-embedded", "direct", "proxy"] + (["nginx"] if _nginx_expected() else [])
    for name in expected:
        entry = results[name]
        assert entry["status"] == "ok", entry
        assert entry["kind"] == "http"
        closed = entry["closed"]
        assert closed["tool"] == "wrk" and closed["connections"] == 64
        assert closed["requests"] > 0 and closed["rps"] > 0
        assert closed["errors"] == 0
        assert set(closed["latency_ms"]) == {"p50", "p90", "p99", "p999", "max"}
        assert 0 <= closed["generator_cpu"]
        assert closed["server_cpu"] and all(share >= 0 for share in closed["server_cpu"].values())
        labels = [point["label"] for point in entry["open"]]
        assert labels[:3] == ["25%", "50%", "100%"]
        for point in entry["open"]:
            assert point["tool"] == "openloop"
            assert point["completed"] == point["sent"] > 0
            assert point["errors"] == 0
            assert set(point["latency_ms"]) == {"p50", "p90", "p99", "p999", "max"}
            assert point["latency_ms"]["p50"] <= point["latency_ms"]["p99"] <= point["latency_ms"]["max"]
            assert isinstance(point["generator_bound"], bool)
    assert "half-pexec-peak" in [point["label"] for point in results["direct"]["open"]]
    # The worker agent's CPU over the closed-loop window, beside the gateway's.
    agent = results["pexec-embedded"]["closed"]["agent_cpu"]
    assert list(agent) == ["pexec-embedded-worker"] and agent["pexec-embedded-worker"] > 0
    assert results["direct"]["closed"]["agent_cpu"] == {}


def test_optional_peer_and_hotpath(run: tuple[dict[str, Any], str, bytes]) -> None:
    results = run[0]["results"]
    if not RAY:
        ray = results["rayserve"]
        assert ray["status"] == "skipped" and "bench-peers" in ray["reason"]
    hot = results["hotpath"]
    assert hot["status"] == "ok"
    decide = hot["cases"]["decide_pexec_cached_api_key"]
    assert decide["py_us"] > 0
    if os.environ.get("CFGATE_NO_EXTENSIONS", "") in ("", "0"):
        assert decide["c_us"] > 0 and decide["speedup"] > 0


def test_targets_markdown_and_plot(run: tuple[dict[str, Any], str, bytes]) -> None:
    record, table, png = run
    names = [row["target"] for row in record["targets"]]
    assert "pexec-embedded / nginx proxy (rps)" in names
    assert "latency added over direct at half load, p50 (ms)" in names
    assert "proxy / nginx" in names and "pexec-redis-2p / pexec-redis-1p" in names
    by_name = {row["target"]: row for row in record["targets"]}
    assert by_name["pexec-embedded / ceiling (moonshot)"]["value"] is not None
    assert by_name["latency added over direct at half load, p99 (ms)"]["value"] is not None
    assert by_name["pexec-redis-1p / pexec-embedded"]["value"] is None  # not run here
    assert record["machine"]["server_cpus"] != record["machine"]["client_cpus"] or record["notes"]
    assert "| scenario | peak rps | server CPU us/req | worker agent CPU us/req |" in table
    assert "## DESIGN §8 targets" in table and "| pexec-embedded |" in table
    turn2 = {row["target"]: row for row in record["turn2_targets"]}
    assert turn2["latency added over direct at half of pexec's peak, p50 (ms)"]["value"] is not None
    assert turn2["gateway CPU us per pexec"]["value"] is not None
    assert "## Turn-2 targets (issue 13, DESIGN §8)" in table
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
