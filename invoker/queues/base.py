"""The queue interface the control plane reads (depth, position) and the invocation layer drives.

Implementations: memory (embedded default) and Redis Streams. Only the read side is defined
here so far; the invocation layer adds enqueue/claim/ack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class QueuePosition:
    function_id: str
    version_id: str
    position: int  # 1 = next to be served; 0 = already with a worker


class InvocationQueue(Protocol):
    async def depth(self, version_id: str) -> int:
        """Invocations of the version waiting for a worker (not yet dispatched)."""
        ...

    async def position(self, request_id: str) -> QueuePosition | None:
        """Where a pending request stands; ``None`` if the queue does not know it."""
        ...
