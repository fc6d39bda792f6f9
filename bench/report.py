"""The run's verdict: DESIGN §8 targets as measured ratios, and the markdown table."""

from __future__ import annotations

from typing import Any

Results = dict[str, dict[str, Any]]


def _peak(results: Results, name: str) -> float | None:
    entry = results.get(name, {})
    return float(entry["closed"]["rps"]) if entry.get("status") == "ok" and entry.get("kind") == "http" else None


def _point(results: Results, name: str, label: str) -> dict[str, Any] | None:
    entry = results.get(name, {})
    if entry.get("status") != "ok" or entry.get("kind") != "http":
        return None
    return next((p for p in entry["open"] if p["label"] == label), None)


def _sse(results: Results, name: str) -> dict[str, Any] | None:
    entry = results.get(name, {})
    return entry["sse"] if entry.get("status") == "ok" and entry.get("kind") == "sse" else None


def _get(entry: dict[str, Any] | None, *keys: str) -> float | None:
    value: Any = entry
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _ratio(what: str, num: float | None, den: float | None, goal: float, unit: str = "x") -> dict[str, Any]:
    value = None if num is None or not den else num / den
    return {
        "target": what,
        "value": None if value is None else round(value, 3),
        "goal": f">= {goal}{unit}",
        "met": None if value is None else value >= goal,
    }


def _at_most(what: str, value: float | None, goal: float, unit: str) -> dict[str, Any]:
    return {
        "target": what,
        "value": None if value is None else round(value, 3),
        "goal": f"< {goal} {unit}",
        "met": None if value is None else value < goal,
    }


def targets(results: Results) -> list[dict[str, Any]]:
    """Every DESIGN §8 target with its measured value (None when a scenario did not run)."""
    pexec = _peak(results, "pexec-embedded")
    rows = []
    cases = results.get("hotpath", {}).get("cases", {})
    decide = cases.get("decide_pexec_cached_api_key", {})
    rows.append(_at_most("hot-path decision, compiled (us)", decide.get("c_us"), 1.0, "us"))
    rows.append(_ratio("hot-path decision, python / compiled", decide.get("py_us"), decide.get("c_us"), 5.0))
    rows.append(_ratio("pexec-embedded / nginx proxy (rps)", pexec, _peak(results, "nginx"), 1.0))
    rows.append(_ratio("pexec-embedded / ceiling (moonshot)", pexec, _peak(results, "ceiling"), 0.3))
    gateway = _point(results, "pexec-embedded", "50%")
    container = _point(results, "direct", "half-pexec-peak")
    for q, goal in (("p50", 1.0), ("p99", 5.0)):
        added = None
        if gateway and container and gateway["latency_ms"][q] is not None and container["latency_ms"][q] is not None:
            added = gateway["latency_ms"][q] - container["latency_ms"][q]
        rows.append(_at_most(f"latency added over direct at half load, {q} (ms)", added, goal, "ms"))
    rows.append(_ratio("pexec-redis-1p / pexec-embedded", _peak(results, "pexec-redis-1p"), pexec, 0.6))
    rows.append(
        _ratio(
            "pexec-redis-2p / pexec-redis-1p", _peak(results, "pexec-redis-2p"), _peak(results, "pexec-redis-1p"), 1.7
        )
    )
    rows.append(_ratio("pexec-embedded / rayserve", pexec, _peak(results, "rayserve"), 20.0))
    rows.append(_ratio("proxy / nginx", _peak(results, "proxy"), _peak(results, "nginx"), 0.5))
    # LLM streaming (issue 16): the container sets the pace; the gateway should neither slow the
    # tokens nor add much to the time to first token (the container's own "prefill" is 20 ms).
    llm, direct = _sse(results, "llm-stream"), _sse(results, "llm-stream-direct")
    rows.append(
        _ratio(
            "llm-stream / llm-stream-direct (tokens/s)", _get(llm, "events_per_s"), _get(direct, "events_per_s"), 0.9
        )
    )
    ttft = _get(llm, "ttfe_ms", "p50"), _get(direct, "ttfe_ms", "p50")
    ttft_ratio = None if None in ttft or not ttft[1] else ttft[0] / ttft[1]  # type: ignore[operator]
    rows.append(_at_most("llm-stream / llm-stream-direct (time to first token p50)", ttft_ratio, 1.25, "x"))
    rows.append(_metrics_cost(results))
    # Not a DESIGN §8 row: the hot path should cost about the same under TLS (issue 13).
    rows.append(_ratio("pexec-tls / pexec-embedded", _peak(results, "pexec-tls"), pexec, 0.8))
    # Not a DESIGN §8 row either (issue 16): gRPC unary calls through cfgate vs the container itself.
    grpc_through, grpc_direct = _grpc_peak(results, "grpc-unary"), _grpc_peak(results, "grpc-unary-direct")
    rows.append(_ratio("grpc-unary / grpc-unary-direct (calls/s)", grpc_through, grpc_direct, 0.3))
    return rows


def _grpc_peak(results: Results, name: str) -> float | None:
    entry = results.get(name, {})
    return float(entry["closed"]["rps"]) if entry.get("status") == "ok" and entry.get("kind") == "grpc" else None


def _metrics_cost(results: Results) -> dict[str, Any]:
    """Issue 17: /metrics (on, function labels, scraped every second) costs at most 5 % of the
    gateway's CPU per pexec: the median over the alternated rounds of on ÷ off at a fixed rate."""
    on = results.get("pexec-metrics-on", {}).get("fixed", {}).get("cpu_us", [])
    off = results.get("pexec-metrics-off", {}).get("fixed", {}).get("cpu_us", [])
    ratios = sorted(a / b for a, b in zip(on, off, strict=False) if a is not None and b)
    value = ratios[len(ratios) // 2] if ratios else None
    return {
        "target": f"metrics on / off, gateway CPU us per pexec (median of {len(ratios)} alternated rounds)",
        "value": None if value is None else round(value, 3),
        "goal": "<= 1.05x",
        "met": None if value is None else value <= 1.05,
    }


def _cpu_row(what: str, name: str, results: Results, goal: float, key: str = "server_cpu") -> dict[str, Any]:
    entry = results.get(name, {})
    ok = entry.get("status") == "ok" and entry.get("kind") == "http"
    value = cpu_us_per_request(entry["closed"], key) if ok else None
    return {
        "target": what,
        "value": None if value is None else round(value, 1),
        "goal": f"<= {goal} us",
        "met": None if value is None else value <= goal,
    }


def highest_load_under(entry: dict[str, Any], p99_ms: float) -> float | None:
    """The highest open-loop offered rate, as a fraction of the closed-loop peak, below which every
    point answered everything with p99 < ``p99_ms`` (the points above the first miss do not count)."""
    if entry.get("status") != "ok" or entry.get("kind") != "http" or not entry["closed"]["rps"]:
        return None
    peak = float(entry["closed"]["rps"])
    points = sorted((p for p in entry["open"] if p["label"].endswith("%")), key=lambda p: p["offered_rps"])
    best = 0.0
    for p in points:
        p99 = p["latency_ms"]["p99"]
        if p["errors"] or p99 is None or p99 >= p99_ms:
            break
        best = p["offered_rps"] / peak
    return best


def turn2_targets(results: Results) -> list[dict[str, Any]]:
    """Issue 13's Done-when rows (DESIGN §8, turn-2 targets), from the same run."""
    pexec = _peak(results, "pexec-embedded")
    rows = [
        _cpu_row("gateway CPU us per pexec", "pexec-embedded", results, 80.0),
        _cpu_row("gateway CPU us per TLB invocation", "tlb-embedded", results, 70.0),
        _cpu_row("worker agent CPU us per invocation (pexec)", "pexec-embedded", results, 80.0, "agent_cpu"),
        _ratio("pexec peak / nginx proxy peak", pexec, _peak(results, "nginx"), 0.35),
    ]
    gateway = _point(results, "pexec-embedded", "50%")
    container = _point(results, "direct", "half-pexec-peak")
    for q, goal in (("p50", 0.5), ("p99", 2.0)):
        added = None
        if gateway and container and gateway["latency_ms"][q] is not None and container["latency_ms"][q] is not None:
            added = gateway["latency_ms"][q] - container["latency_ms"][q]
        rows.append(_at_most(f"latency added over direct at half of pexec's peak, {q} (ms)", added, goal, "ms"))
    highest = highest_load_under(results.get("pexec-embedded", {}), 5.0)
    rows.append(_ratio("pexec open loop: highest offered load with p99 < 5 ms (of peak)", highest, 1.0, 0.8))
    rows.append(_ratio("proxy / nginx", _peak(results, "proxy"), _peak(results, "nginx"), 0.8))
    rows.append(_ratio("pexec-redis-1p / pexec-embedded", _peak(results, "pexec-redis-1p"), pexec, 0.9))
    return rows


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _cpu(shares: dict[str, float]) -> str:
    return "+".join(f"{v:.2f}" for v in shares.values()) or "–"


def markdown(run: dict[str, Any]) -> str:
    results: Results = run["results"]
    lines = [f"# cfgate bench {run['stamp']}", "", _layout(run), ""]
    lines += ["| scenario | peak rps | server CPU us/req | worker agent CPU us/req | wrk p50 / p99 ms | errors "
              "| server CPU | wrk CPU | open 50%: p50 / p99 ms | open 100%: p50 / p99 ms | gen CPU max | notes |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, entry in results.items():
        if entry.get("status") != "ok":
            lines.append(
                f"| {name} | – | – | – | – | – | – | – | – | – | {entry.get('status')}: {entry.get('reason', '')} |"
            )
        elif entry.get("kind") == "http":
            lines.append(_http_row(name, entry))
        elif entry.get("kind") == "grpc":
            closed = entry["closed"]
            lat = closed["latency_ms"]
            lines.append(
                f"| {name} | {closed['rps']:.0f} calls/s | {_us_per_request(closed)} "
                f"| {_us_per_request(closed, 'agent_cpu')} | {_ms(lat['p50'])} / {_ms(lat['p99'])} "
                f"| {closed['errors']} | {_cpu(closed['server_cpu'])} | {closed['generator_cpu']:.2f} | – | – "
                f"| {closed['generator_cpu']:.2f} | gRPC unary, {closed['concurrency']} in flight; "
                f"{'; '.join(entry.get('notes', []))} |"
            )
        elif entry.get("kind") == "sse":
            sse = entry["sse"]
            ttfe = sse["ttfe_ms"]
            lines.append(
                f"| {name} | {sse['events_per_s']:.0f} events/s | – | – | TTFE {_ms(ttfe['p50'])} / {_ms(ttfe['p99'])} "
                f"| {sse['errors']} | {_cpu(entry['server_cpu'])} | – | – | – | {sse['generator_cpu']:.2f} "
                f"| {sse['concurrency']} streams; {'; '.join(entry.get('notes', []))} |"
            )
    lines += _target_table("DESIGN §8 targets", run["targets"])
    lines += _target_table("Turn-2 targets (issue 13, DESIGN §8)", run.get("turn2_targets") or turn2_targets(results))
    hot = results.get("hotpath", {})
    if hot.get("status") == "ok":
        lines += [
            "",
            "## hotpath (mean per call)",
            "",
            "| case | python us | compiled us | speed-up |",
            "|---|---|---|---|",
        ]
        for case, t in hot["cases"].items():
            lines.append(f"| {case} | {t.get('py_us', '–')} | {t.get('c_us', '–')} | {t.get('speedup', '–')} |")
    lines += ["", "## open loop (latency from the intended send time)", ""]
    lines += ["| scenario | point | offered | achieved | p50 | p90 | p99 | p99.9 | errors | server CPU | gen CPU |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, entry in results.items():
        if entry.get("status") == "ok" and entry.get("kind") == "http":
            for p in entry["open"]:
                lat = p["latency_ms"]
                flag = " (generator-bound)" if p["generator_bound"] else ""
                lines.append(
                    f"| {name} | {p['label']} | {p['offered_rps']:.0f} | {p['achieved_rps']:.0f} | {_ms(lat['p50'])} "
                    f"| {_ms(lat['p90'])} | {_ms(lat['p99'])} | {_ms(lat['p999'])} | {p['errors']} "
                    f"| {_cpu(p['server_cpu'])} | {p['generator_cpu']:.2f}{flag} |"
                )
    lines += _fixed_rounds(results)
    notes = run.get("notes") or []
    if notes:
        lines += ["", "## notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _fixed_rounds(results: Results) -> list[str]:
    fixed = {name: e["fixed"] for name, e in results.items() if e.get("status") == "ok" and "fixed" in e}
    if not fixed:
        return []
    lines = ["", "## alternated fixed-rate rounds (server CPU us per request)", ""]
    lines += ["| scenario | rate | rounds |", "|---|---|---|"]
    for name, f in fixed.items():
        rounds = ", ".join("–" if us is None else f"{us:.0f}" for us in f["cpu_us"])
        lines.append(f"| {name} | {f['rate']:.0f} rps x {f['seconds']:.0f} s | {rounds} |")
    return lines


def _target_table(title: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", f"## {title}", "", "| target | measured | goal | met |", "|---|---|---|---|"]
    for row in rows:
        met = "–" if row["met"] is None else ("yes" if row["met"] else "**no**")
        value = "not measured" if row["value"] is None else row["value"]
        lines.append(f"| {row['target']} | {value} | {row['goal']} | {met} |")
    return lines


def _http_row(name: str, entry: dict[str, Any]) -> str:
    closed = entry["closed"]
    lat = closed["latency_ms"]
    half = next((p for p in entry["open"] if p["label"] == "50%"), None)
    full = next((p for p in entry["open"] if p["label"] == "100%"), None)

    def pair(point: dict[str, Any] | None) -> str:
        return "–" if point is None else f"{_ms(point['latency_ms']['p50'])} / {_ms(point['latency_ms']['p99'])}"

    gen = max([p["generator_cpu"] for p in entry["open"]] or [0.0])
    bound = " (generator-bound)" if any(p["generator_bound"] for p in entry["open"]) else ""
    return (
        f"| {name} | {closed['rps']:.0f} | {_us_per_request(closed)} | {_us_per_request(closed, 'agent_cpu')} "
        f"| {_ms(lat['p50'])} / {_ms(lat['p99'])} "
        f"| {closed['errors']} "
        f"| {_cpu(closed['server_cpu'])} | {closed['generator_cpu']:.2f} | {pair(half)} | {pair(full)} "
        f"| {gen:.2f}{bound} | {'; '.join(entry.get('notes', []))} |"
    )


def cpu_us_per_request(closed: dict[str, Any], key: str = "server_cpu") -> float | None:
    """CPU time per request at peak (``key``: the server's, or ``agent_cpu`` for the worker agents):
    robust to a shared machine, where the share is not. None when not measured (older results)."""
    if not closed.get("rps") or not closed.get(key):
        return None
    return float(sum(closed[key].values()) / closed["rps"] * 1e6)


def _us_per_request(closed: dict[str, Any], key: str = "server_cpu") -> str:
    value = cpu_us_per_request(closed, key)
    return "–" if value is None else f"{value:.0f}"


def _layout(run: dict[str, Any]) -> str:
    m = run["machine"]
    return (
        f"{m['cpus']} usable cores; server on {m['server_cpus']}, load generator + worker agent + echo container "
        f"on {m['client_cpus']}; loopback only; wrk {run['plan']['duration']} s closed loop (64 connections), "
        f"open loop {run['plan']['open_duration']} s per point; hot path: {m['hotpath']}; load average at start "
        f"{m['loadavg']}."
    )
