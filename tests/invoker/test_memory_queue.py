"""The in-process queue's slot window: positions stay right when an emptied queue is reused."""

from __future__ import annotations

from invoker.queues.base import QueueEntry
from invoker.queues.memory import MIN_WINDOW, MemoryQueue, VersionQueue


def _entry(request_id: str) -> QueueEntry:
    return QueueEntry(request_id, "fid", "vid", None, 0.0)


def test_positions_after_the_queue_empties_with_and_without_holes() -> None:
    queue = VersionQueue()
    slots = [queue.push_tail(_entry(f"a{i}")) for i in range(3)]
    queue.remove(slots[1])  # holes behind the head: counted in the tree until the queue empties
    queue.remove(slots[2])
    assert queue.position(slots[0]) == 1
    assert queue.pop_head() is not None and queue.pop_head() is None
    # Emptied with holes: nothing of them may count against the next requests.
    again = [queue.push_tail(_entry(f"b{i}")) for i in range(3)]
    assert [queue.position(slot) for slot in again] == [1, 2, 3]
    for _ in again:
        assert queue.pop_head() is not None
    # Emptied without holes, then past the minimum window and back.
    many = [queue.push_tail(_entry(f"c{i}")) for i in range(MIN_WINDOW * 3)]
    queue.remove(many[5])
    assert queue.position(many[-1]) == MIN_WINDOW * 3 - 1
    while queue.pop_head() is not None:
        pass
    last = [queue.push_tail(_entry(f"d{i}")) for i in range(4)]
    queue.remove(last[0])
    assert [queue.position(slot) for slot in last[1:]] == [1, 2, 3]


async def test_take_many_nowait_takes_like_take_many() -> None:
    queue = MemoryQueue()
    for i in range(5):
        await queue.enqueue("vid", "fid", f"r{i}", None)
    first = queue.take_many_nowait("vid", 2)
    assert [(e.request_id, e.attempts) for e in first] == [("r0", 1), ("r1", 1)]
    assert await queue.requeue("r1")
    rest = queue.take_many_nowait("vid", 10)
    assert [(e.request_id, e.attempts) for e in rest] == [("r1", 2), ("r2", 1), ("r3", 1), ("r4", 1)]
    assert queue.take_many_nowait("vid", 1) == [] and await queue.take_many("vid", 1) == []
    assert await queue.ack("r0") and await queue.depth("vid") == 0
