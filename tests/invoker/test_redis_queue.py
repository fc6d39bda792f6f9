"""What only the Redis queue does: reclaim from dead processes, sharing between processes, wakes, codecs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from invoker.errors import BackendUnavailable
from invoker.invocations import InvocationRequest
from invoker.presence import Presence
from invoker.queues.redis import RedisQueue, wake_channel
from invoker.replies import CHUNK, END, START, Reply, decode, encode
from invoker.wire import RequestCodec
from tests.cluster.conftest import restart
from tests.plugins.servers import RedisServerFactory

F, V = "fn", "v1"
Make = Callable[[], Awaitable[RedisQueue]]


@pytest.fixture
async def make_queue(redis_url: str) -> AsyncIterator[Make]:
    """Each call: a queue of a new 'process' (own client, own presence) on the shared Redis."""
    made: list[tuple[Redis, Presence]] = []

    async def make() -> RedisQueue:
        redis = Redis.from_url(redis_url)
        presence = Presence(redis, ttl=1.0, interval=0.2)
        await presence.start()
        made.append((redis, presence))
        return RedisQueue(redis, presence, reclaim_interval=0.2)

    yield make
    for redis, presence in made:
        await presence.stop()
        await redis.aclose()


async def test_a_dead_process_entries_are_reclaimed_a_live_one_never(make_queue: Make) -> None:
    dying, living, survivor = await make_queue(), await make_queue(), await make_queue()
    for rid in ("a", "b", "c"):
        await survivor.enqueue(V, F, rid, None)
    assert (await dying.take(V)) is not None and (await living.take(V)) is not None
    survivor.watch(V, lambda: None)
    await dying.presence.stop()  # like kill -9: its key is gone, nothing else happens
    assert await survivor.reclaim() == 0  # first look: only a suspect
    await asyncio.sleep(1.2)  # well past the live process's key lifetime: its heartbeat keeps it
    assert await survivor.reclaim() == 1
    assert [(await survivor.position(r)).position for r in ("a", "b", "c")] == [1, 0, 2]  # type: ignore[union-attr]
    again = await survivor.take(V)
    assert again is not None and again.request_id == "a" and again.attempts == 2
    assert await living.ack("b")
    assert not await dying.ack("a")  # no longer its to finish


async def test_entries_cross_processes_and_cancel_names_the_holder(make_queue: Make) -> None:
    origin, worker_side = await make_queue(), await make_queue()
    await origin.enqueue(V, F, "a", {"x": 1})
    taken = await worker_side.take(V)
    assert taken is not None and taken.payload == {"x": 1}
    assert await origin.position("a") is not None
    cancelled = await origin.cancel("a")
    assert cancelled is not None and cancelled.holder == worker_side.me
    assert not await worker_side.ack("a")


async def test_enqueue_elsewhere_wakes_a_watching_process(make_queue: Make) -> None:
    producer, consumer = await make_queue(), await make_queue()
    woken = asyncio.Event()
    consumer.watch(V, woken.set)
    await consumer.start()
    try:
        await asyncio.sleep(0.5)  # subscribed
        woken.clear()
        await producer.enqueue(V, F, "a", None)
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await consumer.stop()


async def test_a_wake_goes_out_only_when_another_process_listens(make_queue: Make, redis_url: str) -> None:
    version = f"wake-{uuid.uuid4()}"  # a channel of its own: other tests' queues share this Redis
    # A pattern subscription sees every wake and is not a listener of the channel (NUMSUB).
    spy = Redis.from_url(redis_url)
    pubsub = spy.pubsub()
    await pubsub.psubscribe(wake_channel(version).replace("{", "[{]").replace("}", "[}]"))
    alone, other = await make_queue(), await make_queue()
    alone.watch(version, lambda: None)
    await alone.start()

    async def wakes() -> list[bytes]:
        got = []
        deadline = asyncio.get_running_loop().time() + 0.5
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await pubsub.get_message(timeout=left)
            if message is not None and message["type"] == "pmessage":
                got.append(message["data"])
        return got

    try:
        await asyncio.sleep(0.5)  # subscribed
        for i in range(5):
            await alone.enqueue(version, F, f"mine-{i}", None)
        assert await wakes() == []  # its own listener is the only one: nobody to wake
        other.watch(version, lambda: None)
        await other.start()
        await asyncio.sleep(0.5)
        await alone.enqueue(version, F, "theirs", None)
        assert await wakes() == [alone.me.encode()]
        await other.stop()
        await asyncio.sleep(0.3)
        await alone.stop()
        await asyncio.sleep(0.3)
        await other.enqueue(version, F, "nobody-listens", None)
        assert await wakes() == []
    finally:
        await alone.stop()
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        await spy.aclose()


async def test_invocations_another_process_serves_leave_nothing_behind(make_queue: Make) -> None:
    origin, server = await make_queue(), await make_queue()
    for i in range(1000):
        await origin.enqueue(V, F, f"r{i}", i)
    served = 0
    while batch := await server.take_many(V, 64):
        for entry in batch:
            assert await server.ack(entry.request_id)
            served += 1
    assert served == 1000
    assert (origin.remembered, server.remembered) == (0, 0)
    # What the origin still asks about works from the request index in Redis.
    await origin.enqueue(V, F, "late", None)
    position = await origin.position("late")
    assert position is not None and position.position == 1
    taken = await server.take(V)
    assert taken is not None and taken.request_id == "late" and server.remembered == 1
    cancelled = await origin.cancel("late")
    assert cancelled is not None and cancelled.holder == server.me
    assert await origin.position("r0") is None and await origin.cancel("r0") is None
    assert not await server.ack("late") and server.remembered == 0


async def test_take_many_takes_up_to_count_head_first(make_queue: Make) -> None:
    queue = await make_queue()
    for i in range(5):
        await queue.enqueue(V, F, f"r{i}", i)
    first = await queue.take(V)
    assert first is not None
    await queue.requeue(first.request_id)
    batch = await queue.take_many(V, 4)
    assert [e.request_id for e in batch] == ["r0", "r1", "r2", "r3"]
    assert [e.attempts for e in batch] == [2, 1, 1, 1]
    assert await queue.depth(V) == 1


async def test_redis_down_is_backend_unavailable_and_acks_are_kept(redis_server_factory: RedisServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    redis = Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=1.0)
    presence = Presence(redis)
    queue = RedisQueue(redis, presence, reclaim_interval=0.1)
    try:
        await queue.enqueue(V, F, "a", None)
        assert await queue.take(V) is not None
        server.kill()
        with pytest.raises(BackendUnavailable):
            await queue.enqueue(V, F, "b", None)
        with pytest.raises(BackendUnavailable):
            await queue.depth(V)
        assert await queue.ack("a")  # kept, to be retried
        await restart(server)
        await queue.start()
        for _ in range(100):
            if await queue.position("a") is None:
                break
            await asyncio.sleep(0.05)
        assert await queue.position("a") is None
    finally:
        await queue.stop()
        await redis.aclose()


def test_request_codec_round_trip() -> None:
    request = InvocationRequest(
        request_id="r",
        function_id="f",
        version_id="v",
        method="POST",
        path="/echo?x=1",
        headers=[("Content-Type", "application/json"), ("X-Ü", "ü")],
        body=b"\x00\xffbinary",
        compat=True,
        deadline_ms=123,
        subject="s",
        nca_id="n",
        poll_seconds=5,
        enqueued_at_ms=99,
        assets=[("a", "/u", "image/png")],
        origin="p1",
    )
    codec = RequestCodec()
    assert codec.decode(codec.encode(request)) == request


@pytest.mark.parametrize(
    "reply",
    [
        Reply(START, "r", 2, "p", status=201, headers=[("content-type", "text/plain")], result_kind=1),
        Reply(CHUNK, "r", 1, "p", data=b"\x00bytes"),
        Reply(END, "r", 3, "p", error="worker lost"),
        Reply(END, "r", 1, "p"),
    ],
)
def test_reply_records_round_trip(reply: Reply) -> None:
    assert decode(encode(reply)) == reply
