"""The invalidation bus on a real Redis: delivery to the others, reconnect, full reload after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis

from gateway.redis_client import connect
from gateway.shared.bus import InvalidationBus
from tests.multiproc.waiting import until_true
from tests.servers import RedisServer


class Recorder:
    def __init__(self, bus: InvalidationBus) -> None:
        self.seen: list[tuple[str, str]] = []
        self.reloads = 0
        self.disconnects = 0
        for kind in ("function", "apikey"):
            bus.on(kind, self._handler(kind))
        bus.on_reload(self._reload)
        bus.on_disconnect(self._disconnect)

    def _handler(self, kind: str) -> Callable[[str], asyncio.Future[None]]:
        async def handle(item_id: str) -> None:
            self.seen.append((kind, item_id))

        return handle  # type: ignore[return-value]

    async def _reload(self) -> None:
        self.reloads += 1

    async def _disconnect(self) -> None:
        self.disconnects += 1


Start = Callable[[str, str], Awaitable[InvalidationBus]]


@pytest.fixture
async def started() -> AsyncIterator[Start]:
    """``await start(url, origin)``: a bus on its own client; buses, then clients, closed after."""
    made: list[tuple[InvalidationBus, redis.Redis]] = []

    async def start(url: str, origin: str) -> InvalidationBus:
        client = await connect(url)
        bus = InvalidationBus(client, origin)
        made.append((bus, client))
        return bus

    yield start
    for bus, client in made:
        await bus.close()
        await client.aclose()


async def test_others_hear_a_change_the_publisher_does_not(redis_url: str, started: Start) -> None:
    a, b = await started(redis_url, "process-a"), await started(redis_url, "process-b")
    heard_a, heard_b = Recorder(a), Recorder(b)
    a.start()
    b.start()
    assert await a.wait_connected(5) and await b.wait_connected(5)
    # Every subscription starts with a full reload: changes made before it are not missed.
    assert (heard_a.reloads, heard_b.reloads) == (1, 1)
    assert await a.publish("function", "f-1")
    assert await b.publish("apikey", "k-1")
    assert await b.publish("unknown-kind", "x")
    await until_true(lambda: heard_b.seen == [("function", "f-1")] and heard_a.seen == [("apikey", "k-1")])
    assert heard_a.seen == [("apikey", "k-1")] and heard_b.seen == [("function", "f-1")]


async def test_reconnects_after_redis_restart_and_reloads_everything(
    redis_server_factory: Callable[..., RedisServer], started: Start
) -> None:
    server = redis_server_factory()
    a, b = await started(server.url, "process-a"), await started(server.url, "process-b")
    heard = Recorder(b)
    a.start()
    b.start()
    assert await b.wait_connected(5) and await a.wait_connected(5)
    server.kill()
    await until_true(lambda: not b.connected, what="bus noticing the outage")
    assert heard.disconnects == 1
    # Down: publishing fails fast, and says so.
    assert not await a.publish("function", "lost-while-down")
    server.start()
    assert await b.wait_connected(10) and await a.wait_connected(10)
    assert heard.reloads == 2  # the one at start, and the catch-up after the outage
    assert await a.publish("function", "f-2")
    await until_true(lambda: ("function", "f-2") in heard.seen)
    assert heard.seen == [("function", "f-2")]
