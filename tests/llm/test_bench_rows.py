"""The ``llm-stream`` bench rows: tokens/s and time to first token through cfgate, as ratios to the
container called directly (``bench.report.targets``; the scenario itself runs in ``python -m bench
run --quick --scenarios llm-stream``)."""

from __future__ import annotations

from typing import Any

from bench.report import targets
from bench.scenarios import SCENARIOS


def _sse(events_per_s: float, ttfe_p50: float) -> dict[str, Any]:
    return {"status": "ok", "kind": "sse", "sse": {"events_per_s": events_per_s, "ttfe_ms": {"p50": ttfe_p50}}}


def test_llm_stream_rows_are_ratios_to_the_direct_container() -> None:
    assert "llm-stream" in SCENARIOS
    rows = {r["target"]: r for r in targets({"llm-stream": _sse(950.0, 24.0), "llm-stream-direct": _sse(1000.0, 20.0)})}
    tokens = rows["llm-stream / llm-stream-direct (tokens/s)"]
    first = rows["llm-stream / llm-stream-direct (time to first token p50)"]
    assert (tokens["value"], tokens["met"]) == (0.95, True)
    assert (first["value"], first["met"]) == (1.2, True)
    missing = {r["target"]: r for r in targets({})}
    assert missing["llm-stream / llm-stream-direct (tokens/s)"]["value"] is None
