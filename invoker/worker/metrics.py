"""The worker agent's own ``/metrics`` (``--metrics-port``): invocations by outcome, the
container's latency and answers by status class, errors by kind, and what is in flight.

Counted with plain ints and a ``Histogram`` (``invoker.metrics``), turned into families per scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from invoker.metrics.exposition import render_families
from invoker.metrics.histogram import Histogram, histogram_family

# Why an invocation ended here (``InvocationRunner._run``'s error string → outcome label).
ANSWERED, CANCELLED, DEADLINE, FAILED, ABANDONED = "answered", "cancelled", "deadline", "failed", "abandoned"
# Errors by kind: the container unreachable, its answer broken, an input asset not fetched, a bug here.
ERROR_KINDS = ("container_unreachable", "container_broke_answer", "asset_download", "worker")


class WorkerMetrics:
    def __init__(self) -> None:
        self.outcomes = {kind: 0 for kind in (ANSWERED, CANCELLED, DEADLINE, FAILED, ABANDONED)}
        self.errors = dict.fromkeys(ERROR_KINDS, 0)
        self.statuses: dict[int, int] = {}  # the container's status class (2 for 2xx) -> answers
        self.container = Histogram()
        self.sessions = 0
        # Read at scrape time: invocations in flight now (the current session's runner).
        self.in_flight: Callable[[], int] = lambda: 0

    def ended(self, error: str) -> None:
        if not error:
            kind = ANSWERED
        elif error == "cancelled":
            kind = CANCELLED
        elif error == "deadline exceeded":
            kind = DEADLINE
        else:
            kind = FAILED
        self.outcomes[kind] += 1

    def answered(self, status: int, seconds: float) -> None:
        """The container answered ``status`` and the whole answer took ``seconds``."""
        key = status // 100
        self.statuses[key] = self.statuses.get(key, 0) + 1
        self.container.observe(seconds)

    async def render(self) -> bytes:
        return render_families(_Families(self))


class _Families:
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        outcomes = CounterMetricFamily(
            "cfgate_worker_invocations", "Invocations this agent ended, by outcome.", labels=["outcome"]
        )
        for kind, value in m.outcomes.items():
            outcomes.add_metric([kind], value)
        yield outcomes
        statuses = CounterMetricFamily(
            "cfgate_worker_container_responses", "The container's answers by status class.", labels=["status"]
        )
        for key, value in sorted(m.statuses.items()):
            statuses.add_metric([f"{key}xx"], value)
        yield statuses
        yield histogram_family(
            "cfgate_worker_container_seconds",
            "From the container request until its answer was relayed in full.",
            [],
            {(): m.container},
        )
        errors = CounterMetricFamily("cfgate_worker_errors", "Errors by kind.", labels=["kind"])
        for kind, value in m.errors.items():
            errors.add_metric([kind], value)
        yield errors
        yield GaugeMetricFamily("cfgate_worker_in_flight", "Invocations being served now.", value=m.in_flight())
        yield CounterMetricFamily("cfgate_worker_sessions", "Sessions registered with the gateway.", value=m.sessions)
