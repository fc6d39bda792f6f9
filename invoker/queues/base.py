"""The queue interface the control plane reads (depth, position) and the invocation layer drives.

One FIFO per function version. A request is *waiting* from ``enqueue`` until a worker ``take``s
it, then *in flight* until ``ack`` (done), ``requeue`` (back at the head, e.g. the worker died)
or ``cancel``. Implementations: memory (``invoker.queues.memory``, the embedded default) and
Redis Streams for many processes (``invoker.queues.redis``). Every method is async so both fit
the same protocol. The invoker never imports the gateway: entries carry ids and an opaque payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class QueuePosition:
    function_id: str
    version_id: str
    position: int  # 1 = next to be served; 0 = already with a worker


@dataclass(frozen=True, slots=True)
class QueueEntry:
    request_id: str
    function_id: str
    version_id: str
    payload: Any
    enqueued_at: float  # time.time() of the first enqueue
    attempts: int = 0  # how many times a worker has taken it
    holder: str = ""  # from ``cancel``: the process that had it in flight, if another one (Redis)


class DuplicateRequest(ValueError):
    """``enqueue`` of a request id the queue already holds (waiting or in flight)."""


class InvocationQueue(Protocol):
    # True when every call is a round trip to a server (Redis): callers then do not hold up a
    # stream reader waiting for acks.
    remote: bool

    async def enqueue(
        self, version_id: str, function_id: str, request_id: str, payload: Any, *, limit: int | None = None
    ) -> QueuePosition:
        """Append a request at the tail of its version's queue; its position afterwards.

        ``limit``: refuse with ``QueueFull`` when that many already wait (checked atomically)."""
        ...

    async def take(self, version_id: str) -> QueueEntry | None:
        """The head of the version's queue, now in flight; ``None`` when nothing waits."""
        ...

    async def take_many(self, version_id: str, count: int) -> list[QueueEntry]:
        """Up to ``count`` heads at once (one round trip on Redis), each now in flight."""
        ...

    async def requeue(self, request_id: str) -> bool:
        """Put an in-flight request back at the head of its queue (served next)."""
        ...

    async def ack(self, request_id: str) -> bool:
        """An in-flight request is finished: forget it."""
        ...

    async def cancel(self, request_id: str) -> QueueEntry | None:
        """Remove a request wherever it is (waiting or in flight); the removed entry, if any."""
        ...

    async def purge(self, version_id: str) -> list[QueueEntry]:
        """Drop every waiting and in-flight request of a version (forced undeploy); what was dropped."""
        ...

    async def depth(self, version_id: str) -> int:
        """Invocations of the version waiting for a worker (not yet dispatched)."""
        ...

    async def heads(self, version_ids: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        """For the metrics, per version: how many wait, and the first enqueue time (``time.time()``)
        of the next to be served, None when nothing waits."""
        ...

    async def position(self, request_id: str) -> QueuePosition | None:
        """Where a pending request stands; ``None`` if the queue does not know it."""
        ...

    def watch(self, version_id: str, wake: Callable[[], None]) -> None:
        """This process can serve the version now: call ``wake`` when work may have arrived from
        elsewhere (another process enqueued or requeued). The memory queue has no elsewhere."""
        ...

    def unwatch(self, version_id: str) -> None:
        """No local worker serves the version any more."""
        ...
