"""The Redis instance registry: one view of every process's workers, expiry of a dead process's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.redis_client import connect
from invoker.instance_redis import RedisInstanceRegistry
from invoker.instances import LiveInstance
from tests.multiproc.waiting import eventually, until_true
from tests.servers import RedisServer

TTL = 0.6
FID, VID = "fid-1", "vid-1"


class Changes:
    def __init__(self, registry: RedisInstanceRegistry) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self._registry = registry
        registry.subscribe(self._changed)

    async def _changed(self, function_id: str, version_id: str) -> None:
        self.calls.append((function_id, version_id, self._registry.count(version_id)))


def instance(instance_id: str, version_id: str = VID) -> LiveInstance:
    return LiveInstance(instance_id=instance_id, function_id=FID, version_id=version_id, started_at=1)


Make = Callable[[str, str], Awaitable[RedisInstanceRegistry]]


@pytest.fixture
async def registries() -> AsyncIterator[Make]:
    """``await make(url, process_id)``: a registry on its own client; closed after the test."""
    made: list[tuple[RedisInstanceRegistry, redis.Redis]] = []

    async def make(url: str, process_id: str) -> RedisInstanceRegistry:
        client = await connect(url)
        registry = RedisInstanceRegistry(client, process_id, ttl_seconds=TTL)
        made.append((registry, client))
        return registry

    yield make
    for registry, client in made:
        await registry.close()
        await client.aclose()


async def test_a_worker_on_b_is_seen_from_a(redis_url: str, registries: Make) -> None:
    a, b = await registries(redis_url, "process-a"), await registries(redis_url, "process-b")
    b.announce = lambda _version_id: a.resync()  # what the bus does between processes
    seen_from_a = Changes(a)
    await b.register(instance("worker-1"))
    assert a.count(VID) == 1 and b.count(VID) == 1
    (live,) = a.instances(VID)
    assert (live.instance_id, live.process, live.function_id) == ("worker-1", "process-b", FID)
    assert seen_from_a.calls == [(FID, VID, 1)]
    await a.register(instance("worker-2"))
    await b.resync()
    assert [i.instance_id for i in b.instances(VID)] == ["worker-1", "worker-2"]
    await b.deregister("worker-1")
    assert a.count(VID) == 1 and seen_from_a.calls[-1] == (FID, VID, 1)
    assert a.count("other-version") == 0


async def test_a_dead_process_instances_expire(redis_url: str, registries: Make) -> None:
    a = await registries(redis_url, "process-a")
    client = await connect(redis_url)
    dead = RedisInstanceRegistry(client, "process-dead", ttl_seconds=TTL)  # never refreshes: "killed"
    seen_from_a = Changes(a)
    a.start()
    await a.register(instance("alive"))
    await dead.register(instance("orphan"))
    await a.resync()
    assert a.count(VID) == 2
    await until_true(lambda: a.count(VID) == 1, what="expiry of the dead process's instance")
    assert [i.instance_id for i in a.instances(VID)] == ["alive"]  # kept alive by its own refreshes
    assert seen_from_a.calls[-1] == (FID, VID, 1)
    await client.aclose()  # the dead one's client; its registry is never closed


async def test_survives_a_redis_outage_and_rewrites_itself_after(
    redis_server_factory: Callable[..., RedisServer], registries: Make
) -> None:
    server = redis_server_factory()
    a, b = await registries(server.url, "process-a"), await registries(server.url, "process-b")
    a.start()
    b.start()
    await b.register(instance("on-b"))
    await a.resync()
    server.kill()
    # Down: local registrations still count, the other process's instances stay as last read.
    await a.register(instance("on-a"))
    assert a.count(VID) == 2
    await b.deregister("on-b")
    assert b.count(VID) == 0
    server.start()  # empty: the entries come back from the processes' own refreshes
    await until_true(lambda: b.count(VID) == 1 and a.count(VID) == 1, what="views after the outage")
    assert [i.instance_id for i in b.instances(VID)] == ["on-a"]


async def test_an_empty_redis_after_an_outage_does_not_drop_instances_at_once(
    redis_server_factory: Callable[..., RedisServer], registries: Make
) -> None:
    server = redis_server_factory()
    a, b = await registries(server.url, "process-a"), await registries(server.url, "process-b")
    await b.register(instance("on-b"))  # b never refreshes: after the outage nobody rewrites it
    await a.resync()
    server.kill()
    with pytest.raises(RedisError):
        await a.resync()
    server.start()  # empty
    await a.resync()
    assert a.count(VID) == 1  # not flipped to zero by the restart itself

    async def dropped() -> bool:
        await a.resync()
        return a.count(VID) == 0

    await eventually(dropped, what="the unrefreshed instance leaving after one ttl")
