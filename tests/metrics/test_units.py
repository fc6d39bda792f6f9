"""The pieces under /metrics: the cheap histogram's buckets, and the supervisor's merge."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics.aggregate import render_merged
from invoker.metrics.exposition import render_families
from invoker.metrics.histogram import Histogram, histogram_family


def test_a_value_on_a_bound_counts_in_that_bucket_as_prometheus_le_does() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert histogram.count == 5
    assert abs(histogram.total - 8.65) < 1e-9


class _One:
    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram

    def collect(self) -> Iterator[Metric]:
        yield histogram_family("h_seconds", "h", [], {(): self.histogram})


def _child(depth: int, requests: int, observed: list[float]) -> str:
    histogram = Histogram((0.1, 1.0))
    for value in observed:
        histogram.observe(value)
    text = render_families(_One(histogram)).decode()
    return text + (
        "# HELP cfgate_queue_depth d\n# TYPE cfgate_queue_depth gauge\n"
        f'cfgate_queue_depth{{version_id="v"}} {depth}\n'
        "# HELP cfgate_http_requests r\n# TYPE cfgate_http_requests counter\n"
        f'cfgate_http_requests_total{{service="api"}} {requests}\n'
    )


def test_the_merge_adds_counters_and_buckets_and_takes_the_max_of_shared_queue_gauges() -> None:
    text = render_merged([_child(3, 5, [0.05, 2.0]), _child(3, 7, [0.5])]).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("cfgate_http_requests_total", (("service", "api"),))] == 12
    assert samples[("cfgate_queue_depth", (("version_id", "v"),))] == 3  # one shared queue, not 6
    assert samples[("h_seconds_bucket", (("le", "0.1"),))] == 1
    assert samples[("h_seconds_bucket", (("le", "1.0"),))] == 2
    assert samples[("h_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("h_seconds_count", ())] == 3
    assert abs(samples[("h_seconds_sum", ())] - 2.55) < 1e-9


def test_the_bench_reports_the_median_per_round_ratio_of_metrics_on_to_off() -> None:
    from bench.report import targets

    off = {"status": "ok", "kind": "http", "fixed": {"rate": 600.0, "seconds": 4.0, "cpu_us": [100.0, 100.0, 200.0]}}
    on = {"status": "ok", "kind": "http", "fixed": {"rate": 600.0, "seconds": 4.0, "cpu_us": [103.0, None, 180.0]}}
    rows = {row["target"]: row for row in targets({"pexec-metrics-off": off, "pexec-metrics-on": on})}
    row = rows["metrics on / off, gateway CPU us per pexec (median of 2 alternated rounds)"]
    assert row["value"] == 1.03 and row["met"] is True  # ratios 0.9 and 1.03: the upper middle
    missing = [r for r in targets({}) if r["target"].startswith("metrics on / off")]
    assert [r["value"] for r in missing] == [None]  # not run: not measured
