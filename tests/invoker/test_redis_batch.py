"""Script calls batched into shared round trips: each caller still gets exactly its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from invoker.presence import Presence
from invoker.queues.redis import RedisQueue
from invoker.queues.redis_batch import ScriptBatcher

F, V = "fn", "v1"
ECHO = "return ARGV[1]"
FAIL = "return redis.error_reply('refused ' .. ARGV[1])"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_concurrent_calls_share_round_trips_each_gets_its_own_result(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo = redis.register_script(ECHO)
    answers = await asyncio.gather(*(batcher.call(echo, [], [f"n{i}"]) for i in range(100)))
    assert answers == [f"n{i}".encode() for i in range(100)]
    assert batcher.calls == 100
    assert batcher.round_trips < 10  # the first call goes alone, the rest rode along


async def test_an_error_reaches_only_its_caller(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo, fail = redis.register_script(ECHO), redis.register_script(FAIL)
    calls = [batcher.call(echo, [], ["a"]), batcher.call(fail, [], ["b"]), batcher.call(echo, [], ["c"])]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == b"a" and results[2] == b"c"
    assert isinstance(results[1], ResponseError) and "refused b" in str(results[1])


async def test_scripts_the_server_forgot_are_loaded_again(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo = redis.register_script(ECHO)
    assert await batcher.call(echo, [], ["before"]) == b"before"
    await redis.script_flush()  # as after a Redis restart without persistence of scripts
    again = await asyncio.gather(batcher.call(echo, [], ["x"]), batcher.call(echo, [], ["y"]))
    assert list(again) == [b"x", b"y"]


async def test_a_cancelled_caller_does_not_disturb_the_others(redis: Redis) -> None:
    batcher = ScriptBatcher(redis)
    echo = redis.register_script(ECHO)
    first = asyncio.ensure_future(batcher.call(echo, [], ["first"]))
    doomed = asyncio.ensure_future(batcher.call(echo, [], ["doomed"]))
    last = asyncio.ensure_future(batcher.call(echo, [], ["last"]))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await first == b"first" and await last == b"last"
    assert doomed.cancelled()
    await batcher.close()
    assert batcher.calls == 3


async def test_queue_steps_made_together_are_batched_and_stay_in_order(redis: Redis) -> None:
    presence = Presence(redis)
    queue = RedisQueue(redis, presence)
    positions = await asyncio.gather(*(queue.enqueue(V, F, f"r{i}", {"i": i}) for i in range(40)))
    assert [p.position for p in positions] == list(range(1, 41))  # FIFO as submitted
    assert queue.batcher.round_trips < 40
    taken = await queue.take_many(V, 40)
    assert [e.request_id for e in taken] == [f"r{i}" for i in range(40)]
    assert all(await asyncio.gather(*(queue.ack(e.request_id) for e in taken)))
    assert await queue.depth(V) == 0 and await redis.xlen(f"cfgate:{{{V}}}:s") == 0
