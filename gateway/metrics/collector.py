"""The gateway process's families, read when ``/metrics`` is scraped.

Counters come from plain numbers the hot path bumps (``HttpCounts``, ``DispatchMetrics``, the
invocation service's and byte budget's refusals, ``BACKEND_ERRORS``); gauges (queue depth and
the age of the next item per version, connected workers, free credits) are read at scrape time,
so they cost nothing between scrapes. A queue that cannot be read (Redis away) leaves its gauges
out of that scrape and counts a Redis error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.edge.budget import ByteBudget
from gateway.invocation.service import InvocationService
from gateway.metrics.http import HttpCounts
from gateway.services.functions.routing import RoutingCache
from invoker.dispatch import Dispatcher
from invoker.errors import BackendUnavailable
from invoker.metrics.backend import BACKEND_ERRORS
from invoker.metrics.dispatch import DispatchMetrics
from invoker.metrics.exposition import render_families
from invoker.metrics.histogram import histogram_family
from invoker.queues.base import InvocationQueue

Heads = Mapping[str, tuple[int, float | None]]


@dataclass
class Sources:
    """What the gauges are read from, bound once the gateway has started."""

    dispatcher: Dispatcher
    queues: InvocationQueue
    routes: RoutingCache
    invocations: InvocationService
    budget: ByteBudget


class GatewayMetrics:
    def __init__(self, service_names: Mapping[int, str], *, function_labels: bool) -> None:
        self.function_labels = function_labels
        self.http = HttpCounts(service_names)
        self.dispatch = DispatchMetrics(function_labels)
        self.sources: Sources | None = None

    async def render(self) -> bytes:
        heads: Heads | None = None
        owners: dict[str, str] = {}
        if self.sources is not None:
            for route in self.sources.routes.all():
                for version in route.invocable_versions():
                    owners[version.version_id] = route.function_id
            try:
                heads = await self.sources.queues.heads(owners)
            except BackendUnavailable:
                heads = None
        return render_families(_Families(list(self._families(heads, owners, time.time()))))

    def _families(self, heads: Heads | None, owners: Mapping[str, str], now: float) -> Iterator[Metric]:
        yield _gauge("cfgate_gateway_processes", "Gateway processes answering this scrape.", 1)
        requests = CounterMetricFamily(
            "cfgate_http_requests", "HTTP answers by host service, method and status class.",
            labels=["service", "method", "status"],
        )  # fmt: skip
        for labels, value in self.http.samples():
            requests.add_metric(list(labels), value)
        yield requests
        yield from self._invocation_families()
        if heads is not None:
            yield from _queue_families(heads, owners, now, self.function_labels)
        if self.sources is not None:
            yield from self._sources_families(self.sources)
        errors = CounterMetricFamily("cfgate_backend_errors", "Errors talking to a backing store.", labels=["backend"])
        errors.add_metric(["redis"], BACKEND_ERRORS.redis)
        errors.add_metric(["database"], BACKEND_ERRORS.database)
        yield errors

    def _invocation_families(self) -> Iterator[Metric]:
        dispatch = self.dispatch
        names = ["function_id"] if self.function_labels else []
        for name, doc, histograms in (
            ("cfgate_invocation_queue_wait_seconds", "From enqueue until a worker is handed the invocation.",
             dispatch.queue_wait),
            ("cfgate_invocation_first_byte_seconds", "From enqueue until the worker's response starts.",
             dispatch.first_byte),
            ("cfgate_invocation_duration_seconds", "From enqueue until the invocation is final.", dispatch.total),
        ):  # fmt: skip
            yield histogram_family(name, doc, names, histograms.series())
        outcomes = CounterMetricFamily(
            "cfgate_invocations", "Invocations that ended, by final state.", labels=[*names, "outcome"]
        )
        for (function_id, state), value in sorted(dispatch.outcomes.items()):
            outcomes.add_metric([function_id, state.lower()] if names else [state.lower()], value)
        yield outcomes
        for name, doc, value in (
            ("cfgate_invocation_redeliveries", "Invocations put back at the head of the queue after a lost worker.",
             dispatch.redeliveries),
            ("cfgate_invocation_attempts_exhausted", "Invocations ended errored after max attempts lost workers.",
             dispatch.attempts_exhausted),
            ("cfgate_invocation_cancellations", "Invocations cancelled (client gone, poll window over, undeploy).",
             dispatch.cancellations),
            ("cfgate_invocation_expirations", "Invocations nobody took within their queue lifetime.",
             dispatch.expirations),
            ("cfgate_worker_credits_granted", "Credits granted by workers (room for one invocation each).",
             dispatch.credits_granted),
            ("cfgate_worker_credits_used", "Invocations handed to workers (one credit each).", dispatch.credits_used),
        ):  # fmt: skip
            yield CounterMetricFamily(name, doc, value=value)

    def _sources_families(self, sources: Sources) -> Iterator[Metric]:
        sessions = sources.dispatcher.all_sessions()
        yield _gauge("cfgate_workers_connected", "Worker sessions connected to this process.", len(sessions))
        credits = sum(s.credits for s in sessions)
        yield _gauge("cfgate_worker_credits_available", "Free credits of the connected workers.", credits)
        yield _gauge(
            "cfgate_invocations_in_flight", "Invocations with a worker of this process.",
            sum(len(s.inflight) for s in sessions),
        )  # fmt: skip
        rejections = CounterMetricFamily(
            "cfgate_invocation_rejections", "Invocations refused with 429, by reason.", labels=["reason"]
        )
        rejections.add_metric(["rate_limit"], sources.invocations.rate_limited)
        rejections.add_metric(["queue_full"], sources.invocations.queue_full)
        rejections.add_metric(["body_budget"], sources.budget.refused)
        yield rejections


def _queue_families(heads: Heads, owners: Mapping[str, str], now: float, function_labels: bool) -> Iterator[Metric]:
    names = ["function_id", "version_id"] if function_labels else ["version_id"]
    depth = GaugeMetricFamily("cfgate_queue_depth", "Invocations waiting for a worker, per version.", labels=names)
    age = GaugeMetricFamily(
        "cfgate_queue_oldest_age_seconds", "Age of the next invocation to be served, per version (0: none waits).",
        labels=names,
    )  # fmt: skip
    for version_id, (waiting, enqueued) in sorted(heads.items()):
        labels = [owners.get(version_id, ""), version_id] if function_labels else [version_id]
        depth.add_metric(labels, waiting)
        age.add_metric(labels, max(0.0, now - enqueued) if enqueued is not None else 0.0)
    yield depth
    yield age


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _Families:
    """A collector of families already built (prometheus-client's registry asks ``collect``)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
