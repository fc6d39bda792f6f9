"""Queue priority between accounts (``llmInvocationConfig.priority``) over any ``InvocationQueue``.

Each version's queue becomes *lanes*, one per priority: the inner queue's own queue of the
version for priority 0, and a queue named ``<version>~p<priority>`` for each other one. Takes
empty the lowest number first (FIFO within a lane); depth and position count every lane, so the
control plane's queue details see one queue. Requeued entries go back to the head of their own
lane. The inner queue (memory or Redis Streams) is untouched, so both backends keep their rules
(redelivery, reclaim of a dead process's entries, wakes): a lane is just another of its queues.

Which lanes a version has comes from its configuration (``lanes_of``, read by every process
alike) plus the priorities enqueued here. A version with one lane (every function without
priorities) takes the inner queue's path unchanged. With several lanes the queue bound holds
across them: each enqueue is admitted against every lane's waiting entries and the admissions
racing it, in one Redis script or serialized in process (``invoker.queues.lane_bound``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from invoker.queues.base import InvocationQueue, QueueEntry, QueuePosition
from invoker.queues.lane_bound import LaneBound

_MARK = "~p"

# (function id, version id, payload) → the entry's priority; version id → configured priorities.
PriorityOf = Callable[[str, str, Any], int]
LanesOf = Callable[[str], Iterable[int]]


def lane_name(version_id: str, priority: int) -> str:
    return version_id if priority == 0 else f"{version_id}{_MARK}{priority}"


def split_lane(name: str) -> tuple[str, int]:
    version_id, mark, priority = name.partition(_MARK)
    return version_id, int(priority) if mark else 0


def _entry(entry: QueueEntry, version_id: str) -> QueueEntry:
    if entry.version_id == version_id:
        return entry
    return QueueEntry(
        entry.request_id, entry.function_id, version_id, entry.payload, entry.enqueued_at, entry.attempts, entry.holder
    )


class PriorityLanes:
    def __init__(self, inner: InvocationQueue, priority_of: PriorityOf, lanes_of: LanesOf) -> None:
        self.inner = inner
        self.remote = inner.remote
        self._priority_of = priority_of
        self._lanes_of = lanes_of
        self._seen: dict[str, set[int]] = {}  # version → priorities other than 0 enqueued here
        self._wakes: dict[str, Callable[[], None]] = {}
        self._watched: dict[str, set[int]] = {}  # version → lanes watched on the inner queue
        self._bound = LaneBound(inner)
        take_now = getattr(inner, "take_many_nowait", None)
        # An in-process inner queue: the dispatcher's pump may run without a coroutine.
        self.take_many_nowait: Callable[[str, int], list[QueueEntry]] | None = (
            None if take_now is None else self._take_now(take_now)
        )

    def lanes(self, version_id: str) -> list[int]:
        """The version's priorities, the first served first."""
        return sorted({0, *self._lanes_of(version_id), *self._seen.get(version_id, ())})

    # --- the protocol ---------------------------------------------------------------------

    async def enqueue(
        self, version_id: str, function_id: str, request_id: str, payload: Any, *, limit: int | None = None
    ) -> QueuePosition:
        priority = self._priority_of(function_id, version_id, payload)
        if priority == 0 and self.lanes(version_id) == [0]:
            return await self.inner.enqueue(version_id, function_id, request_id, payload, limit=limit)
        if priority:
            self._seen.setdefault(version_id, set()).add(priority)
            self._sync_watch(version_id)
        lane = lane_name(version_id, priority)
        if limit is None:
            position = await self.inner.enqueue(lane, function_id, request_id, payload)
        else:
            lanes = [lane_name(version_id, p) for p in self.lanes(version_id)]
            async with self._bound.admitted(version_id, request_id, lanes, limit):
                position = await self.inner.enqueue(lane, function_id, request_id, payload, limit=limit)
        ahead = 0
        for p in self.lanes(version_id):
            if p < priority:
                ahead += await self.inner.depth(lane_name(version_id, p))
        return QueuePosition(function_id, version_id, position.position + ahead)

    async def take(self, version_id: str) -> QueueEntry | None:
        return next(iter(await self.take_many(version_id, 1)), None)

    async def take_many(self, version_id: str, count: int) -> list[QueueEntry]:
        lanes = self.lanes(version_id)
        if lanes == [0]:
            return await self.inner.take_many(version_id, count)
        self._sync_watch(version_id)
        taken: list[QueueEntry] = []
        for priority in lanes:
            if len(taken) >= count:
                break
            got = await self.inner.take_many(lane_name(version_id, priority), count - len(taken))
            taken += (_entry(e, version_id) for e in got)
        return taken

    def _take_now(self, take: Callable[[str, int], list[QueueEntry]]) -> Callable[[str, int], list[QueueEntry]]:
        def take_many_nowait(version_id: str, count: int) -> list[QueueEntry]:
            lanes = self.lanes(version_id)
            if lanes == [0]:
                return take(version_id, count)
            taken: list[QueueEntry] = []
            for priority in lanes:
                if len(taken) >= count:
                    break
                taken += (_entry(e, version_id) for e in take(lane_name(version_id, priority), count - len(taken)))
            return taken

        return take_many_nowait

    async def requeue(self, request_id: str) -> bool:
        return await self.inner.requeue(request_id)

    async def ack(self, request_id: str) -> bool:
        return await self.inner.ack(request_id)

    async def cancel(self, request_id: str) -> QueueEntry | None:
        entry = await self.inner.cancel(request_id)
        return None if entry is None else _entry(entry, split_lane(entry.version_id)[0])

    async def purge(self, version_id: str) -> list[QueueEntry]:
        dropped: list[QueueEntry] = []
        for priority in self.lanes(version_id):
            dropped += (_entry(e, version_id) for e in await self.inner.purge(lane_name(version_id, priority)))
        return dropped

    async def depth(self, version_id: str) -> int:
        return sum([await self.inner.depth(lane_name(version_id, p)) for p in self.lanes(version_id)])

    async def heads(self, version_ids: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        """Every lane counts in the depth; the head is that of the first lane served that holds any."""
        lanes = {v: [lane_name(v, p) for p in self.lanes(v)] for v in version_ids}
        inner = await self.inner.heads([name for names in lanes.values() for name in names])
        return {
            v: (sum(inner[n][0] for n in names), next((inner[n][1] for n in names if inner[n][0]), None))
            for v, names in lanes.items()
        }

    async def position(self, request_id: str) -> QueuePosition | None:
        found = await self.inner.position(request_id)
        if found is None:
            return None
        version_id, priority = split_lane(found.version_id)
        if found.position == 0 or self.lanes(version_id) == [0]:
            return QueuePosition(found.function_id, version_id, found.position)
        ahead = 0
        for p in self.lanes(version_id):
            if p < priority:
                ahead += await self.inner.depth(lane_name(version_id, p))
        return QueuePosition(found.function_id, version_id, found.position + ahead)

    def watch(self, version_id: str, wake: Callable[[], None]) -> None:
        self._wakes[version_id] = wake
        self._watched[version_id] = set()
        self._sync_watch(version_id)

    def unwatch(self, version_id: str) -> None:
        self._wakes.pop(version_id, None)
        for priority in self._watched.pop(version_id, ()):
            self.inner.unwatch(lane_name(version_id, priority))

    def _sync_watch(self, version_id: str) -> None:
        """Every lane of a version served here is watched on the inner queue (wakes, reclaim)."""
        wake = self._wakes.get(version_id)
        if wake is None:
            return
        watched = self._watched[version_id]
        for priority in self.lanes(version_id):
            if priority not in watched:
                watched.add(priority)
                self.inner.watch(lane_name(version_id, priority), wake)
