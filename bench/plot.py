"""The PNG: p50 and p99 latency (open loop) against offered load, one line per scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5), sharex=True)
    for name, entry in results.items():
        if entry.get("status") != "ok" or entry.get("kind") != "http":
            continue
        points = sorted((p for p in entry["open"] if p["label"].endswith("%")), key=lambda p: p["offered_rps"])
        rates = [p["offered_rps"] for p in points]
        for axis, q in zip(axes, ("p50", "p99"), strict=True):
            values = [p["latency_ms"][q] for p in points]
            axis.plot(rates, values, marker="o", label=name)
    for axis, q in zip(axes, ("p50", "p99"), strict=True):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("offered load (requests/s, open loop)")
        axis.set_ylabel(f"{q} latency (ms, from intended send time)")
        axis.set_title(q)
        axis.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
