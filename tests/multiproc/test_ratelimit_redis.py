"""The Redis-shared rate limiter: same decisions as the in-process one, one budget for all clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from gateway.invocation.rate_policy import RatePolicy
from gateway.invocation.ratelimit import RateLimiter, RedisRateLimiter
from gateway.redis_client import connect
from tests.servers import RedisServer

FID = "a6a8d9c3-0f4e-4b43-9d3e-6d7e8f9a0b1c"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[Callable[[], redis.Redis]]:
    made: list[redis.Redis] = []

    def make() -> redis.Redis:
        client = redis.Redis.from_url(redis_url, socket_timeout=1.0)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_same_decisions_as_the_in_process_limiter(clients: Callable[[], redis.Redis]) -> None:
    shared, local = RedisRateLimiter(clients()), RateLimiter()
    start = (int(time.time()) // 60 + 1) * 60  # a fresh minute: no earlier test's windows
    # 2 per second and 3 per minute: refused requests use up neither window.
    moments = [start, start + 0.1, start + 0.2, start + 1.0, start + 1.1, start + 2.0, start + 61.0, start + 61.5]
    expected = [local.allow(FID, "2-S,3-M", t) for t in moments]
    assert expected == [True, True, False, True, False, False, True, True]
    assert [await shared.allow(FID, "2-S,3-M", t) for t in moments] == expected


async def test_one_budget_across_clients(clients: Callable[[], redis.Redis]) -> None:
    a, b = RedisRateLimiter(clients()), RedisRateLimiter(clients())
    now = (int(time.time()) // 60 + 2) * 60
    decisions = [await (a if i % 2 else b).allow(FID, "5-M", now + i * 0.01) for i in range(12)]
    assert decisions.count(True) == 5 and decisions[:5] == [True] * 5
    # Another function has its own budget.
    assert await a.allow("other-function", "5-M", now)


async def test_falls_back_to_per_process_windows_while_redis_is_down(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    client = await connect(server.url)
    limiter = RedisRateLimiter(client)
    now = (int(time.time()) // 60 + 3) * 60
    try:
        assert [await limiter.allow(FID, "2-M", now) for _ in range(3)] == [True, True, False]
        server.kill()
        # Down: this process counts alone, from zero, and still enforces the limit.
        assert [await limiter.allow(FID, "2-M", now) for _ in range(3)] == [True, True, False]
        server.start()  # empty again (no persistence): scripts and windows are gone
        other = RedisRateLimiter(client)
        assert [await limiter.allow(FID, "2-M", now), await other.allow(FID, "2-M", now)] == [True, True]
        assert not await other.allow(FID, "2-M", now)
    finally:
        await client.aclose()


async def test_tiers_and_retry_after_agree_with_the_in_process_limiter(clients: Callable[[], redis.Redis]) -> None:
    policy = RatePolicy("2-M", frozenset({"exempt"}), {"vip": "3-M"}, "1-H")
    shared, local = RedisRateLimiter(clients()), RateLimiter()
    start = (int(time.time()) // 3600 + 1) * 3600 + 0.5  # a fresh hour
    calls = [("acct", "u1"), ("acct", "u1"), ("acct", "u2"), ("acct", "u3"), ("vip", "v1"), ("vip", "v2")]
    calls += [("vip", "v3"), ("vip", "v4"), ("exempt", "e1"), ("exempt", "e1"), ("exempt", "e2"), ("acct", "")]
    checks = [policy.checks(FID, nca, subject) for nca, subject in calls]
    expected = [local.check(c, start + i) for i, c in enumerate(checks)]
    # u1's second call: its user hour is used (retry at the hour's end); u3: the account's minute.
    assert expected == [0, 3600 - 1, 0, 60 - 3, 0, 0, 0, 60 - 7, 0, 3600 - 9, 0, 60 - 11]
    assert [await shared.check(c, start + i) for i, c in enumerate(checks)] == expected
