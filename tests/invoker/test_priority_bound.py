"""The queue bound of a version in priority lanes holds across its lanes under concurrent submits:
in process (memory) and across processes sharing a real Redis (two clients, two presences)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from invoker.errors import QueueFull
from invoker.presence import Presence
from invoker.queues import InvocationQueue, MemoryQueue
from invoker.queues.lane_bound import admissions_key
from invoker.queues.priority import PriorityLanes
from invoker.queues.redis import RedisQueue

F = "fn"
BOUND = 20
PRIORITIES = (0, 1, 5)


def _priority(function_id: str, version_id: str, payload: object) -> int:
    return int(payload["priority"]) if isinstance(payload, dict) else 0


def _lanes(version_id: str) -> tuple[int, ...]:
    return PRIORITIES


@pytest.fixture(params=["memory", "redis"])
async def views(request: pytest.FixtureRequest) -> AsyncIterator[list[InvocationQueue]]:
    """Two views of one queue: the same object in process, two gateway processes' on Redis."""
    if request.param == "memory":
        lanes = PriorityLanes(MemoryQueue(), _priority, _lanes)
        yield [lanes, lanes]
        return
    url = request.getfixturevalue("redis_url")
    clients = [Redis.from_url(url), Redis.from_url(url)]
    presences = [Presence(c) for c in clients]
    for presence in presences:
        await presence.start()
    try:
        yield [PriorityLanes(RedisQueue(c, p), _priority, _lanes) for c, p in zip(clients, presences, strict=True)]
    finally:
        for presence in presences:
            await presence.stop()
        for client in clients:
            await client.aclose()


async def test_concurrent_submits_across_lanes_never_pass_the_bound(views: list[InvocationQueue]) -> None:
    version = f"v-bound-{id(views)}"
    submits = [
        views[i % 2].enqueue(version, F, f"{version}-r{i}", {"priority": PRIORITIES[i % 3]}, limit=BOUND)
        for i in range(120)
    ]
    results = await asyncio.gather(*submits, return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QueueFull)]
    assert (len(accepted), len(refused)) == (BOUND, 120 - BOUND)
    assert await views[0].depth(version) == BOUND
    # Work taken makes room again, across lanes: two taken, two more admitted, then full again.
    assert len(await views[1].take_many(version, 2)) == 2
    again = await asyncio.gather(
        *(views[i % 2].enqueue(version, F, f"{version}-s{i}", {"priority": 5}, limit=BOUND) for i in range(6)),
        return_exceptions=True,
    )
    assert [isinstance(r, QueueFull) for r in again].count(False) == 2
    assert await views[1].depth(version) == BOUND


async def test_admissions_do_not_outlive_their_enqueue(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    presence = Presence(client)
    await presence.start()
    try:
        lanes = PriorityLanes(RedisQueue(client, presence), _priority, _lanes)
        await lanes.enqueue("v-admissions", F, "a", {"priority": 1}, limit=BOUND)
        with pytest.raises(QueueFull):
            await lanes.enqueue("v-admissions", F, "b", {"priority": 0}, limit=1)
        assert await client.zcard(admissions_key("v-admissions")) == 0
    finally:
        await presence.stop()
        await client.aclose()
