"""One bench run: every scenario in turn, each measured closed loop (peak) then open loop."""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.hotpath import run_hotpath
from bench.loadgen.grpc_unary import GrpcTarget, run_grpc_unary
from bench.loadgen.openloop import run_openloop
from bench.loadgen.sse import run_sse
from bench.loadgen.target import Target
from bench.loadgen.wrk import run_wrk
from bench.procs import BenchError, CpuMeter
from bench.scenarios import SCENARIOS, Context, Subject
from bench.stack import NotAvailable, Skipped

# ``alternate``: rounds of one fixed-rate point per subject, each long enough for CPU ticks to add up.
FIXED_ROUNDS = 6
FIXED_POINT_SECONDS = 4.0
GENERATOR_BOUND = 0.9  # a generator above this CPU share (of one core) may be what limits the point
LATE_SENDING = 1.1  # ... or one that needed 10 % longer than planned to send its requests


@dataclass(frozen=True)
class Plan:
    duration: float  # closed-loop seconds per subject
    open_duration: float  # seconds per open-loop point
    fractions: tuple[float, ...]  # open-loop offered rates, as fractions of the measured peak
    warmup: float
    quick: bool

    @classmethod
    def make(cls, quick: bool, duration: float | None) -> Plan:
        if quick:
            return cls(duration or 1.0, max(0.5, (duration or 1.0) / 2), (0.25, 0.5, 1.0), 1.0, True)
        full = duration or 10.0
        return cls(full, max(1.0, full / 2), tuple(i / 10 for i in range(1, 11)), 2.0, False)


def generator_bound(point: dict[str, Any], duration: float) -> bool:
    """The generator, not the server, may limit this point: it used (nearly) a whole core, or it
    could not even send on schedule (starved of CPU by whatever else runs on its core)."""
    return bool(point["generator_cpu"] >= GENERATOR_BOUND or point["send_span_s"] > duration * LATE_SENDING)


def measure(subject: Subject, ctx: Context, plan: Plan, extra_rates: dict[str, float]) -> dict[str, Any]:
    if isinstance(subject.target, GrpcTarget):
        run_grpc_unary(subject.target, plan.warmup, ctx.client_cpus)
        meter = CpuMeter(subject.server)
        agents = CpuMeter(subject.agents)
        closed = run_grpc_unary(subject.target, plan.duration, ctx.client_cpus)
        closed["server_cpu"] = meter.shares()
        closed["agent_cpu"] = agents.shares()
        return {"status": "ok", "kind": "grpc", "closed": closed, "notes": subject.notes}
    if subject.kind == "sse":
        meter = CpuMeter(subject.server)
        result = run_sse(subject.target, plan.duration, ctx.client_cpus)
        return {"status": "ok", "kind": "sse", "sse": result, "server_cpu": meter.shares(), "notes": subject.notes}
    run_wrk(subject.target, plan.warmup, ctx.client_cpus, ctx.work_dir)
    if subject.check is not None:
        subject.check()
    meter = CpuMeter(subject.server)
    agents = CpuMeter(subject.agents)
    closed = run_wrk(subject.target, plan.duration, ctx.client_cpus, ctx.work_dir)
    closed["server_cpu"] = meter.shares()
    closed["agent_cpu"] = agents.shares()
    peak = closed["rps"]
    points = []
    rates = [(f"{round(f * 100)}%", max(10.0, f * peak)) for f in plan.fractions]
    rates += [(label, rate) for label, rate in extra_rates.items()]
    for label, rate in rates:
        meter = CpuMeter(subject.server)
        point = run_openloop(subject.target, rate, plan.open_duration, ctx.client_cpus)
        point["label"] = label
        point["server_cpu"] = meter.shares()
        point["generator_bound"] = generator_bound(point, plan.open_duration)
        points.append(point)
    return {"status": "ok", "kind": "http", "closed": closed, "open": points, "notes": subject.notes}


def alternate(subjects: list[Subject], ctx: Context) -> dict[str, dict[str, Any]]:
    """Each subject at its ``fixed_rate`` in turns, ``FIXED_ROUNDS`` times: server CPU us per
    request per round (None when the point missed its rate by more than 5 %)."""
    rounds: dict[str, list[float | None]] = {s.name: [] for s in subjects}
    for _ in range(FIXED_ROUNDS):
        for subject in subjects:
            assert subject.fixed_rate is not None and isinstance(subject.target, Target)
            meter = CpuMeter(subject.server)
            point = run_openloop(subject.target, subject.fixed_rate, FIXED_POINT_SECONDS, ctx.client_cpus)
            shares = meter.shares()
            achieved = point["achieved_rps"]
            kept = achieved >= 0.95 * subject.fixed_rate and not point["errors"]
            rounds[subject.name].append(round(sum(shares.values()) / achieved * 1e6, 1) if kept else None)
    rate = subjects[0].fixed_rate
    return {name: {"rate": rate, "seconds": FIXED_POINT_SECONDS, "cpu_us": us} for name, us in rounds.items()}


def run(names: list[str], plan: Plan, ctx: Context, say: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.monotonic()
        say(f"bench: {name} ...")
        if name == "hotpath":
            results[name] = _guard(lambda: run_hotpath(ctx.server_cpus, ctx.work_dir, plan.quick))
            results[name]["scenario"] = name
        else:
            results.update(_scenario(name, plan, ctx, results))
        say(f"bench: {name} done in {time.monotonic() - started:.0f} s ({_summary(results, name)})")
    return results


def _extra_rates(name: str, results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``direct`` is also measured at half of pexec-embedded's peak (the added-latency target)."""
    pexec = results.get("pexec-embedded", {})
    if name == "direct" and pexec.get("status") == "ok":
        return {"half-pexec-peak": max(10.0, pexec["closed"]["rps"] / 2)}
    return {}


def _scenario(name: str, plan: Plan, ctx: Context, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    try:
        with SCENARIOS[name](ctx) as subjects:
            for subject in subjects:
                step = functools.partial(measure, subject, ctx, plan, _extra_rates(subject.name, results))
                out[subject.name] = _guard(step)
                out[subject.name]["scenario"] = name
            if len(subjects) > 1 and all(s.fixed_rate is not None for s in subjects):
                for subject_name, fixed in alternate(subjects, ctx).items():
                    out[subject_name]["fixed"] = fixed
    except NotAvailable as exc:
        out[name] = {"status": "not available in this build", "reason": str(exc)}
    except Skipped as exc:
        out[name] = {"status": "skipped", "reason": str(exc)}
    except BenchError as exc:
        out.setdefault(name, {"status": "failed", "reason": str(exc)})
    for value in out.values():
        value.setdefault("scenario", name)
    return out


def _guard(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return step()
    except NotAvailable as exc:
        return {"status": "not available in this build", "reason": str(exc)}
    except BenchError as exc:
        return {"status": "failed", "reason": str(exc)}
    except Exception as exc:  # a bug in one scenario must not lose the others' results
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}


def _summary(results: dict[str, dict[str, Any]], name: str) -> str:
    parts = []
    for key, value in results.items():
        if value.get("scenario") != name:
            continue
        if value.get("status") != "ok":
            parts.append(f"{key}: {value.get('status')}")
        elif value.get("kind") == "http":
            parts.append(f"{key}: {value['closed']['rps']:.0f} rps")
        elif value.get("kind") == "grpc":
            parts.append(f"{key}: {value['closed']['rps']:.0f} calls/s")
        elif value.get("kind") == "sse":
            parts.append(f"{key}: {value['sse']['events_per_s']:.0f} events/s")
        else:
            parts.append(f"{key}: ok")
    return "; ".join(parts)


def work_dir_for(results_dir: Path, stamp: str) -> Path:
    path = results_dir / f".work-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path
