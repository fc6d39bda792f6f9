"""HTTP answers by host service, method and status class, counted by the edge as it writes them.

One dict increment per answer, keyed by the hot-path decision's service number (no label strings
built per request); the names come in at scrape time. Methods are bounded by the parser (httptools
knows a fixed set), services and status classes by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Answers with no service decision: /health, and the edge's own refusals (408, 431, 503 ...).
GATEWAY_SERVICE = -1


class HttpCounts:
    __slots__ = ("counts", "service_names")

    def __init__(self, service_names: Mapping[int, str]) -> None:
        self.service_names = dict(service_names)
        self.counts: dict[tuple[int, str, int], int] = {}

    def count(self, decision: Any, method: str, status: int) -> None:
        """``decision``: the request's ``cext.hotpath.Decision``, or None when it has none."""
        key = (GATEWAY_SERVICE if decision is None else decision.service, method, status // 100)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def samples(self) -> list[tuple[tuple[str, str, str], int]]:
        names = self.service_names
        out = []
        for (service, method, status_class), value in sorted(self.counts.items()):
            name = "gateway" if service == GATEWAY_SERVICE else names.get(service, f"service-{service}")
            out.append(((name, method, f"{status_class}xx"), value))
        return out
