"""In-process invocation queue: one FIFO per function version, with O(log n) queue positions.

Layout of one version's queue. Every waiting request holds a *slot*, a sequence number: tail
appends take ``tail`` (then ``tail + 1``), head re-inserts take ``head - 1``, so the slots in use
always form one contiguous range ``[head, tail)``. Taking the head pops ``head``; cancelling a
request in the middle leaves a *hole* (its slot stays in the range, marked removed). Then

    position(slot) = (slot - head) - holes in [head, slot) + 1

and the holes are counted by a Fenwick (binary indexed) tree over the slot window, so a position
costs O(log n). Holes are forgotten as the head passes them, and the window is rebuilt (O(n),
amortised O(1) per operation) when a slot falls outside it.

Complexity (n = requests waiting in the version, h = holes):
``enqueue`` O(1) amortised, ``take`` O(1) amortised (skips holes, each once, O(log n) apiece),
``requeue`` O(1) amortised, ``cancel`` O(log n), ``ack`` O(1), ``depth`` O(1),
``position`` O(log n), ``purge`` O(n).

Blocking waits for work (a dispatcher sleeping until a version has something) are left to the
invocation layer, which wraps ``take``; this class holds the data and never blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from invoker.errors import QueueFull
from invoker.queues.base import DuplicateRequest, QueueEntry, QueuePosition

MIN_WINDOW = 64


class Fenwick:
    """Counts over indexes ``0 … size-1``: point add and prefix sum, both O(log size)."""

    __slots__ = ("_tree",)

    def __init__(self, size: int, marked: Iterable[int] = ()) -> None:
        tree = [0] * (size + 1)
        any_marked = False
        for index in marked:
            tree[index + 1] += 1
            any_marked = True
        if any_marked:  # all zeros otherwise: an idle queue is rebuilt for every invocation
            for i in range(1, size + 1):  # O(size) construction
                parent = i + (i & -i)
                if parent <= size:
                    tree[parent] += tree[i]
        self._tree = tree

    @property
    def size(self) -> int:
        return len(self._tree) - 1

    def add(self, index: int, delta: int) -> None:
        tree = self._tree
        i = index + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def prefix(self, index: int) -> int:
        """Sum over ``[0, index)``."""
        tree = self._tree
        total = 0
        i = index
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total


class VersionQueue:
    """The waiting requests of one function version, in slot order."""

    __slots__ = ("_base", "_entries", "_head", "_holes", "_marks", "_tail")

    def __init__(self) -> None:
        self._entries: dict[int, QueueEntry] = {}
        self._holes: set[int] = set()
        self._marks = Fenwick(MIN_WINDOW)
        self._reset()

    def __len__(self) -> int:
        return len(self._entries)

    def _reset(self) -> None:
        self._head = self._tail = 0
        self._base = -(MIN_WINDOW // 4)
        # Without holes the tree counts nothing (all zeros): keep it when it has the minimum size.
        if self._holes or self._marks.size != MIN_WINDOW:
            self._marks = Fenwick(MIN_WINDOW)
        self._holes.clear()

    def _fit(self, slot: int) -> None:
        """Rebuild the window around ``[head, tail)`` so that ``slot`` has an index in it."""
        if 0 <= slot - self._base < self._marks.size:
            return
        low, high = min(self._head, slot), max(self._tail, slot + 1)
        window = max(MIN_WINDOW, 4 * (high - low))
        self._base = low - window // 4
        self._marks = Fenwick(window, (hole - self._base for hole in self._holes))

    def push_tail(self, entry: QueueEntry) -> int:
        slot = self._tail
        self._fit(slot)
        self._entries[slot] = entry
        self._tail += 1
        return slot

    def push_head(self, entry: QueueEntry) -> int:
        slot = self._head - 1
        self._fit(slot)
        self._entries[slot] = entry
        self._head = slot
        return slot

    def pop_head(self) -> QueueEntry | None:
        if not self._entries:
            return None
        self._skip_holes()
        entry = self._entries.pop(self._head)
        self._head += 1
        self._after_removal()
        return entry

    def remove(self, slot: int) -> QueueEntry:
        entry = self._entries.pop(slot)
        if slot == self._head:
            self._head += 1
        else:
            self._holes.add(slot)
            self._marks.add(slot - self._base, 1)
        self._after_removal()
        return entry

    def entry(self, slot: int) -> QueueEntry:
        return self._entries[slot]

    def head(self) -> QueueEntry | None:
        """The next to be served (not taken)."""
        if not self._entries:
            return None
        self._skip_holes()
        return self._entries[self._head]

    def position(self, slot: int) -> int:
        """1-based; holes exist only inside ``[head, tail)``, so the prefix counts those before ``slot``."""
        return slot - self._head - self._marks.prefix(slot - self._base) + 1

    def drain(self) -> list[QueueEntry]:
        entries = [self._entries[slot] for slot in sorted(self._entries)]
        self._entries.clear()
        self._reset()
        return entries

    def _skip_holes(self) -> None:
        while self._head in self._holes:
            self._holes.discard(self._head)
            self._marks.add(self._head - self._base, -1)
            self._head += 1

    def _after_removal(self) -> None:
        if not self._entries:
            self._reset()  # nothing waits: drop every hole and shrink the window
        else:
            self._skip_holes()


class MemoryQueue:
    """``InvocationQueue`` held in this process: per-version ``VersionQueue`` plus the in-flight set."""

    remote = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._versions: dict[str, VersionQueue] = {}
        self._waiting: dict[str, tuple[VersionQueue, int]] = {}  # request id → (its queue, its slot)
        self._in_flight: dict[str, QueueEntry] = {}
        self._spare: VersionQueue | None = None  # an emptied version queue, reset, for reuse

    async def enqueue(
        self, version_id: str, function_id: str, request_id: str, payload: Any, *, limit: int | None = None
    ) -> QueuePosition:
        queue, slot = self._push(version_id, function_id, request_id, payload, limit)
        return QueuePosition(function_id, version_id, queue.position(slot))

    def enqueue_nowait(
        self, version_id: str, function_id: str, request_id: str, payload: Any, *, limit: int | None = None
    ) -> None:
        """``enqueue`` without a coroutine or a position (the dispatcher's submit needs neither)."""
        self._push(version_id, function_id, request_id, payload, limit)

    def _push(
        self, version_id: str, function_id: str, request_id: str, payload: Any, limit: int | None
    ) -> tuple[VersionQueue, int]:
        if request_id in self._waiting or request_id in self._in_flight:
            raise DuplicateRequest(f"request {request_id} is already queued")
        queue = self._versions.get(version_id)
        if limit is not None and (len(queue) if queue is not None else 0) >= limit:
            raise QueueFull(f"queue of version {version_id} is full")
        entry = QueueEntry(request_id, function_id, version_id, payload, self._clock())
        if queue is None:
            queue = self._versions[version_id] = self._spare or VersionQueue()
            self._spare = None
        slot = queue.push_tail(entry)
        self._waiting[request_id] = (queue, slot)
        return queue, slot

    async def take(self, version_id: str) -> QueueEntry | None:
        return self._take(version_id)

    def take_many_nowait(self, version_id: str, count: int) -> list[QueueEntry]:
        """``take_many`` without a coroutine: the dispatcher's pump runs inline for this queue."""
        taken: list[QueueEntry] = []
        while len(taken) < count and (entry := self._take(version_id)) is not None:
            taken.append(entry)
        return taken

    def _take(self, version_id: str) -> QueueEntry | None:
        queue = self._versions.get(version_id)
        if queue is None:
            return None
        entry = queue.pop_head()
        if entry is None:
            return None
        del self._waiting[entry.request_id]
        self._drop_if_empty(version_id, queue)
        # Built directly: dataclasses.replace looks the fields up on every call (~2x the cost).
        taken = QueueEntry(
            entry.request_id,
            entry.function_id,
            entry.version_id,
            entry.payload,
            entry.enqueued_at,
            entry.attempts + 1,
            entry.holder,
        )
        self._in_flight[entry.request_id] = taken
        return taken

    async def take_many(self, version_id: str, count: int) -> list[QueueEntry]:
        taken: list[QueueEntry] = []
        while len(taken) < count and (entry := self._take(version_id)) is not None:
            taken.append(entry)
        return taken

    async def requeue(self, request_id: str) -> bool:
        entry = self._in_flight.pop(request_id, None)
        if entry is None:
            return False
        queue = self._versions.get(entry.version_id)
        if queue is None:
            queue = self._versions[entry.version_id] = VersionQueue()
        self._waiting[request_id] = (queue, queue.push_head(entry))
        return True

    async def ack(self, request_id: str) -> bool:
        return self._in_flight.pop(request_id, None) is not None

    async def cancel(self, request_id: str) -> QueueEntry | None:
        located = self._waiting.pop(request_id, None)
        if located is None:
            return self._in_flight.pop(request_id, None)
        queue, slot = located
        entry = queue.remove(slot)
        self._drop_if_empty(entry.version_id, queue)
        return entry

    async def purge(self, version_id: str) -> list[QueueEntry]:
        dropped: list[QueueEntry] = []
        queue = self._versions.pop(version_id, None)
        if queue is not None:
            dropped = queue.drain()
            for entry in dropped:
                del self._waiting[entry.request_id]
        flying = [entry for entry in self._in_flight.values() if entry.version_id == version_id]
        for entry in flying:
            del self._in_flight[entry.request_id]
        return dropped + flying

    async def depth(self, version_id: str) -> int:
        queue = self._versions.get(version_id)
        return len(queue) if queue is not None else 0

    async def heads(self, version_ids: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        """Per version asked for: how many wait, and the first enqueue time of the next to be
        served (None: nothing waits)."""
        found: dict[str, tuple[int, float | None]] = {}
        for version_id in version_ids:
            queue = self._versions.get(version_id)
            head = queue.head() if queue is not None else None
            found[version_id] = (len(queue) if queue is not None else 0, head.enqueued_at if head else None)
        return found

    async def position(self, request_id: str) -> QueuePosition | None:
        located = self._waiting.get(request_id)
        if located is not None:
            queue, slot = located
            entry = queue.entry(slot)
            return QueuePosition(entry.function_id, entry.version_id, queue.position(slot))
        flying = self._in_flight.get(request_id)
        if flying is not None:
            return QueuePosition(flying.function_id, flying.version_id, 0)
        return None

    def watch(self, version_id: str, wake: Callable[[], None]) -> None:
        """Every enqueue happens in this process, which kicks its own dispatcher."""

    def unwatch(self, version_id: str) -> None:
        pass

    def _drop_if_empty(self, version_id: str, queue: VersionQueue) -> None:
        if not queue and self._versions.get(version_id) is queue:
            del self._versions[version_id]
            # Kept for the next version that gets work: a queue that is taken empty and filled
            # again at every invocation (the usual case under load) built a new one each time.
            self._spare = queue
