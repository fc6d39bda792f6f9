"""``llmInvocationConfig.priority`` for the invocation queue (``invoker.queues.priority``): an
entry's priority is its caller account's (``perAccountPriority``, else ``defaultPriority``), read
from the routing cache every process holds, so each process sees the same lanes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.services.functions.routing import RoutingCache
from invoker.queues.priority import LanesOf, PriorityOf


def queue_priority(routes: RoutingCache) -> PriorityOf:
    def priority_of(function_id: str, version_id: str, payload: Any) -> int:
        version = routes.version(version_id)
        if version is None or version.llm is None:
            return 0
        return version.llm.priority_of(str(getattr(payload, "nca_id", "")))

    return priority_of


def queue_lanes(routes: RoutingCache) -> LanesOf:
    def lanes_of(version_id: str) -> Iterable[int]:
        version = routes.version(version_id)
        return version.llm.priorities() if version is not None and version.llm is not None else ()

    return lanes_of
