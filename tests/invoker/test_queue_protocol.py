"""The ``InvocationQueue`` protocol, on every implementation: memory and Redis Streams (real redis-server)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from invoker.errors import QueueFull
from invoker.presence import Presence
from invoker.queues import DuplicateRequest, InvocationQueue, MemoryQueue, QueueEntry, QueuePosition
from invoker.queues.priority import PriorityLanes
from invoker.queues.redis import RedisQueue

F, V, W = "fn", "v1", "v2"
CLOCK = 12.5


def _payload_priority(function_id: str, version_id: str, payload: object) -> int:
    return int(payload.get("priority", 0)) if isinstance(payload, dict) else 0


def with_lanes(queue: InvocationQueue) -> InvocationQueue:
    """Priority lanes (``invoker.queues.priority``) with lanes configured: entries of priority 0 keep
    the whole protocol although every call now goes through the lanes."""
    return PriorityLanes(queue, _payload_priority, lambda version_id: (-2, 5))


@pytest.fixture(params=["memory", "redis", "redis-cluster-keys", "memory-lanes", "redis-lanes"])
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[InvocationQueue]:
    if request.param.startswith("memory"):
        memory = MemoryQueue(clock=lambda: CLOCK)
        yield with_lanes(memory) if request.param.endswith("lanes") else memory
        return
    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    presence = Presence(redis)
    await presence.start()
    try:
        # "redis-cluster-keys": the index written as for Redis Cluster (its own command, other slot).
        inner = RedisQueue(redis, presence, clock=lambda: CLOCK, cluster=request.param == "redis-cluster-keys")
        yield with_lanes(inner) if request.param.endswith("lanes") else inner
    finally:
        await presence.stop()
        await redis.aclose()


async def positions(queue: InvocationQueue, ids: list[str]) -> list[int | None]:
    found = [await queue.position(i) for i in ids]
    return [p.position if p else None for p in found]


async def test_fifo_depth_and_positions(queue: InvocationQueue) -> None:
    first = await queue.enqueue(V, F, "a", {"n": 1})
    assert first == QueuePosition(F, V, 1)
    assert (await queue.enqueue(V, F, "b", {"n": 2})).position == 2
    assert (await queue.enqueue(V, F, "c", {"n": 3})).position == 3
    assert await queue.depth(V) == 3
    assert await queue.depth(W) == 0
    assert await positions(queue, ["a", "b", "c"]) == [1, 2, 3]
    taken = await queue.take(V)
    assert taken == QueueEntry("a", F, V, {"n": 1}, CLOCK, attempts=1)
    assert await queue.depth(V) == 2
    assert await positions(queue, ["a", "b", "c"]) == [0, 1, 2]  # a is with a worker
    assert await queue.ack("a")
    assert not await queue.ack("a")
    assert await queue.position("a") is None
    assert [e.request_id for e in [await queue.take(V), await queue.take(V)] if e] == ["b", "c"]
    assert await queue.take(V) is None
    assert await queue.take(W) is None


async def test_cancel_in_the_middle_moves_the_ones_behind(queue: InvocationQueue) -> None:
    ids = [f"r{i}" for i in range(6)]
    for rid in ids:
        await queue.enqueue(V, F, rid, None)
    cancelled = await queue.cancel("r2")
    assert cancelled is not None and cancelled.request_id == "r2"
    assert await queue.cancel("r2") is None
    assert await positions(queue, ids) == [1, 2, None, 3, 4, 5]
    assert await queue.depth(V) == 5
    await queue.cancel("r4")
    await queue.cancel("r0")
    assert await positions(queue, ids) == [None, 1, None, 2, None, 3]
    assert [(await queue.take(V)).request_id for _ in range(3)] == ["r1", "r3", "r5"]  # type: ignore[union-attr]
    assert await queue.depth(V) == 0


async def test_requeue_puts_it_back_at_the_head(queue: InvocationQueue) -> None:
    for rid in ("a", "b", "c"):
        await queue.enqueue(V, F, rid, None)
    taken = await queue.take(V)
    assert taken is not None and taken.attempts == 1
    assert await queue.requeue("a")
    assert not await queue.requeue("a")  # no longer in flight
    assert not await queue.requeue("zzz")
    assert await positions(queue, ["a", "b", "c"]) == [1, 2, 3]
    again = await queue.take(V)
    assert again is not None and again.request_id == "a" and again.attempts == 2


async def test_requeue_after_its_queue_emptied(queue: InvocationQueue) -> None:
    await queue.enqueue(V, F, "a", None)
    await queue.take(V)
    assert await queue.depth(V) == 0
    assert await queue.requeue("a")
    assert await queue.depth(V) == 1
    assert await positions(queue, ["a"]) == [1]


async def test_cancel_in_flight_and_duplicates(queue: InvocationQueue) -> None:
    await queue.enqueue(V, F, "a", None)
    with pytest.raises(DuplicateRequest):
        await queue.enqueue(W, F, "a", None)
    await queue.take(V)
    with pytest.raises(DuplicateRequest):
        await queue.enqueue(V, F, "a", None)  # still in flight
    flying = await queue.cancel("a")
    assert flying is not None and flying.attempts == 1
    assert await queue.position("a") is None
    await queue.enqueue(V, F, "a", None)  # a finished id may be used again
    assert await positions(queue, ["a"]) == [1]


async def test_versions_are_independent(queue: InvocationQueue) -> None:
    await queue.enqueue(V, F, "a", None)
    await queue.enqueue(W, F, "b", None)
    await queue.enqueue(V, F, "c", None)
    assert (await queue.depth(V), await queue.depth(W)) == (2, 1)
    assert await queue.position("b") == QueuePosition(F, W, 1)
    assert await queue.position("c") == QueuePosition(F, V, 2)
    taken = await queue.take(W)
    assert taken is not None and taken.request_id == "b"


async def test_purge_drops_waiting_and_in_flight_of_one_version(queue: InvocationQueue) -> None:
    for rid in ("a", "b", "c"):
        await queue.enqueue(V, F, rid, None)
    await queue.enqueue(W, F, "other", None)
    await queue.take(V)
    dropped = await queue.purge(V)
    assert [e.request_id for e in dropped] == ["b", "c", "a"]
    assert await queue.depth(V) == 0
    assert await positions(queue, ["a", "b", "c", "other"]) == [None, None, None, 1]
    assert await queue.purge(V) == []
    await queue.enqueue(V, F, "b", None)
    assert await positions(queue, ["b"]) == [1]


async def test_random_operations_match_a_list_model(queue: InvocationQueue) -> None:
    rng = random.Random(20241123)
    model: dict[str, list[str]] = {V: [], W: []}
    flying: dict[str, str] = {}
    counter = 0
    steps = 4000 if isinstance(queue, MemoryQueue) else 500  # a round trip per call on Redis
    for _ in range(steps):
        version = rng.choice((V, W))
        action = rng.random()
        if action < 0.4:
            counter += 1
            rid = f"r{counter}"
            position = await queue.enqueue(version, F, rid, counter)
            model[version].append(rid)
            assert position.position == len(model[version])
        elif action < 0.6:
            entry = await queue.take(version)
            if model[version]:
                assert entry is not None and entry.request_id == model[version].pop(0)
                flying[entry.request_id] = version
            else:
                assert entry is None
        elif action < 0.72 and flying:
            rid = rng.choice(sorted(flying))
            assert await queue.requeue(rid)
            model[flying.pop(rid)].insert(0, rid)
        elif action < 0.8 and flying:
            rid = rng.choice(sorted(flying))
            assert await queue.ack(rid)
            del flying[rid]
        elif model[version]:
            rid = rng.choice(model[version])
            cancelled = await queue.cancel(rid)
            assert cancelled is not None and cancelled.request_id == rid
            model[version].remove(rid)
        for name, waiting in model.items():
            assert await queue.depth(name) == len(waiting)
        for name, waiting in model.items():
            sample = set(waiting[:4] + waiting[-4:] + rng.sample(waiting, min(4, len(waiting))))
            for rid in sample:
                assert await queue.position(rid) == QueuePosition(F, name, waiting.index(rid) + 1)
        for rid in flying:
            found = await queue.position(rid)
            assert found is not None and found.position == 0


async def test_bound_is_checked_at_enqueue(queue: InvocationQueue) -> None:
    await queue.enqueue(V, F, "a", None, limit=2)
    await queue.enqueue(V, F, "b", None, limit=2)
    with pytest.raises(QueueFull):
        await queue.enqueue(V, F, "c", None, limit=2)
    assert await queue.position("c") is None
    await queue.take(V)  # in flight does not count: the bound is on waiting requests
    await queue.enqueue(V, F, "c", None, limit=2)
    assert await queue.depth(V) == 2
    with pytest.raises(QueueFull):
        await queue.enqueue(W, F, "d", None, limit=0)


async def test_requeued_entries_keep_their_payload_and_count_attempts(queue: InvocationQueue) -> None:
    await queue.enqueue(V, F, "a", {"body": "x" * 1000})
    for attempt in (1, 2, 3):
        taken = await queue.take(V)
        assert taken is not None and taken.attempts == attempt and taken.payload == {"body": "x" * 1000}
        assert await queue.requeue("a")
    cancelled = await queue.cancel("a")
    assert cancelled is not None and cancelled.attempts == 3 and cancelled.holder == ""


async def test_lanes_serve_the_lower_priority_first_and_count_every_lane() -> None:
    queue = with_lanes(MemoryQueue(clock=lambda: CLOCK))
    await queue.enqueue(V, F, "late", {"priority": 5})
    await queue.enqueue(V, F, "plain", {})
    await queue.enqueue(V, F, "urgent", {"priority": -2})
    assert await queue.depth(V) == 3
    assert await positions(queue, ["urgent", "plain", "late"]) == [1, 2, 3]
    taken = await queue.take_many(V, 2)
    assert [(e.request_id, e.version_id) for e in taken] == [("urgent", V), ("plain", V)]
    assert await queue.requeue("plain")
    assert [e.request_id for e in await queue.take_many(V, 5)] == ["plain", "late"]


async def test_heads_give_depth_and_the_enqueue_time_of_the_next_to_be_served(queue: InvocationQueue) -> None:
    times = iter([10.0, 20.0, 30.0])
    clocked: InvocationQueue = queue
    inner = queue.inner if isinstance(queue, PriorityLanes) else queue
    if isinstance(inner, MemoryQueue):
        fresh = MemoryQueue(clock=lambda: next(times))
        clocked = with_lanes(fresh) if isinstance(queue, PriorityLanes) else fresh
    else:
        assert isinstance(inner, RedisQueue)
        inner._clock = lambda: next(times)
    assert await clocked.heads([V, W]) == {V: (0, None), W: (0, None)}
    await clocked.enqueue(V, F, "a", {})
    await clocked.enqueue(V, F, "b", {})
    await clocked.enqueue(W, F, "c", {})
    assert await clocked.heads([V, W]) == {V: (2, 10.0), W: (1, 30.0)}
    taken = await clocked.take(V)
    assert taken is not None and taken.request_id == "a"
    assert await clocked.heads([V]) == {V: (1, 20.0)}
    # A requeued request is served next, so it is the head again (with its first enqueue time).
    assert await clocked.requeue("a")
    assert await clocked.heads([V]) == {V: (2, 10.0)}
    await clocked.cancel("a")
    await clocked.cancel("b")
    assert await clocked.heads([V]) == {V: (0, None)}
