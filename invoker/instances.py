"""Live worker instances per function version: who is connected and serving what.

The worker endpoint registers and deregisters instances; the control plane listens and moves
function status DEPLOYING → ACTIVE → DEGRADED and back. ``MemoryInstanceRegistry`` is the
in-process registry (the embedded default); ``RedisInstanceRegistry`` (``invoker.instance_redis``)
shares it among many processes, with expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("invoker.instances")

# Called with (function_id, version_id) after the set of live instances of that version changed.
InstanceListener = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class LiveInstance:
    instance_id: str
    function_id: str
    version_id: str
    nca_id: str = ""
    gpu: str | None = None
    instance_type: str | None = None
    backend: str | None = None
    location: str | None = None
    started_at: int = 0
    updated_at: int = 0
    status: str = "ACTIVE"
    labels: dict[str, str] = field(default_factory=dict)
    # The gateway process whose worker endpoint holds the worker's stream (set by the Redis registry).
    process: str = ""


class InstanceRegistry(Protocol):
    async def register(self, instance: LiveInstance) -> None: ...
    async def deregister(self, instance_id: str) -> None: ...
    def count(self, version_id: str) -> int: ...
    def instances(self, version_id: str) -> list[LiveInstance]: ...
    def subscribe(self, listener: InstanceListener) -> None: ...


class MemoryInstanceRegistry:
    def __init__(self) -> None:
        self._by_id: dict[str, LiveInstance] = {}
        self._by_version: dict[str, dict[str, LiveInstance]] = {}
        self._listeners: list[InstanceListener] = []

    async def register(self, instance: LiveInstance) -> None:
        previous = self._by_id.get(instance.instance_id)
        if previous is not None and previous.version_id != instance.version_id:
            self._by_version.get(previous.version_id, {}).pop(instance.instance_id, None)
        self._by_id[instance.instance_id] = instance
        self._by_version.setdefault(instance.version_id, {})[instance.instance_id] = instance
        await self._notify(instance.function_id, instance.version_id)

    async def deregister(self, instance_id: str) -> None:
        instance = self._by_id.pop(instance_id, None)
        if instance is None:
            return
        members = self._by_version.get(instance.version_id, {})
        members.pop(instance_id, None)
        if not members:
            self._by_version.pop(instance.version_id, None)
        await self._notify(instance.function_id, instance.version_id)

    def count(self, version_id: str) -> int:
        return len(self._by_version.get(version_id, ()))

    def instances(self, version_id: str) -> list[LiveInstance]:
        return sorted(self._by_version.get(version_id, {}).values(), key=lambda i: (i.started_at, i.instance_id))

    def subscribe(self, listener: InstanceListener) -> None:
        self._listeners.append(listener)

    async def _notify(self, function_id: str, version_id: str) -> None:
        results = await asyncio.gather(
            *(listener(function_id, version_id) for listener in self._listeners), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("instance listener failed for %s/%s", function_id, version_id, exc_info=result)
