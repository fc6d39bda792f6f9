"""A latency histogram that costs one ``bisect`` and two additions per observation.

prometheus-client's ``Histogram.observe`` takes a lock and walks its buckets (~1.5 µs); three of
them per invocation would be a few per cent of the gateway's CPU. This one keeps per-bucket
counts (not cumulative) in a list and turns them into a ``HistogramMetricFamily`` at scrape
time. One event loop per process: no lock needed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

from prometheus_client.core import HistogramMetricFamily

# Seconds: from sub-millisecond gateway hops to long GPU runs (the queue lifetime is an hour).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip


class Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, as Prometheus buckets are "le" (inclusive).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        buckets = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            buckets.append((_bound_text(bound), float(running)))
        buckets.append(("+Inf", float(running + self.counts[-1])))
        return buckets


class LabeledHistograms:
    """One histogram per label value (a function id), or a single one when ``labeled`` is off."""

    __slots__ = ("_series", "bounds", "labeled", "single")

    def __init__(self, labeled: bool, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.labeled = labeled
        self.bounds = tuple(bounds)
        self.single = Histogram(self.bounds)
        self._series: dict[str, Histogram] = {}

    def get(self, label: str) -> Histogram:
        if not self.labeled:
            return self.single
        found = self._series.get(label)
        if found is None:
            found = self._series[label] = Histogram(self.bounds)
        return found

    def series(self) -> Mapping[tuple[str, ...], Histogram]:
        if not self.labeled:
            return {(): self.single}
        return {(label,): histogram for label, histogram in self._series.items()}


def histogram_family(
    name: str, documentation: str, label_names: Sequence[str], series: Mapping[tuple[str, ...], Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=list(label_names))
    for labels, histogram in series.items():
        family.add_metric(list(labels), histogram.cumulative(), histogram.total)
    return family


def _bound_text(bound: float) -> str:
    return repr(float(bound))
