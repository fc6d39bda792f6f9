"""``tokenRateLimit`` windows (``gateway.llm.budget``), in process and shared through a real Redis:
a model may start requests until a window's tokens are spent, then waits for the window's end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.llm.budget import LocalTokenBudget, RedisTokenBudget, TokenBudget

NOW = 3_600_000.0  # a whole number of hours: every window starts here


@pytest.fixture(params=["local", "redis"])
async def budgets(request: pytest.FixtureRequest) -> AsyncIterator[tuple[TokenBudget, TokenBudget]]:
    """Two budgets that must share their windows (two processes' views with Redis)."""
    if request.param == "local":
        local = LocalTokenBudget()
        yield local, local
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisTokenBudget(client), RedisTokenBudget(client)
    finally:
        await client.aclose()


async def test_a_spent_window_waits_until_it_ends(budgets: tuple[TokenBudget, TokenBudget]) -> None:
    first, second = budgets
    rate = "100-M,150-H"
    assert await first.wait_seconds("f/m", rate, now=NOW) == 0
    await first.charge("f/m", rate, 60, now=NOW)
    assert await second.wait_seconds("f/m", rate, now=NOW + 1) == 0
    await second.charge("f/m", rate, 60, now=NOW + 1)
    # 120 of 100 this minute: refused for the rest of it (59 s), by either view.
    assert await first.wait_seconds("f/m", rate, now=NOW + 1) == 59
    assert await second.wait_seconds("other/m", rate, now=NOW + 1) == 0
    # Next minute: the hour still has 30 tokens left, so requests start again ...
    assert await first.wait_seconds("f/m", rate, now=NOW + 60) == 0
    await first.charge("f/m", rate, 30, now=NOW + 60)
    # ... until the hour is spent too.
    assert await second.wait_seconds("f/m", rate, now=NOW + 61) > 60


async def test_redis_unreachable_falls_back_to_this_process() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    budget = RedisTokenBudget(client)
    try:
        await budget.charge("f/m", "10-M", 10, now=NOW)
        assert await budget.wait_seconds("f/m", "10-M", now=NOW) == 60
    finally:
        await client.aclose()


async def test_concurrent_admissions_see_each_others_reservations(redis_url: str) -> None:
    """Fifty requests reserving 10 tokens each, admitted at once through two processes' views
    (two Redis connections) of a 100-token minute: exactly ten get in, the window holds 100."""
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    try:
        views = [RedisTokenBudget(c) for c in clients]
        waits = await asyncio.gather(*(views[i % 2].admit("f/concurrent", "100-M", 10, now=NOW) for i in range(50)))
        assert (waits.count(0), set(waits) - {0}) == (10, {60})
        assert int(await clients[0].get(f"cfgate:tokens:{{f/concurrent}}:60:{int(NOW // 60)}") or 0) == 100
        # Settling gives back what a request did not use: another one fits again.
        await views[1].charge("f/concurrent", "100-M", -4, now=NOW)
        assert await views[0].admit("f/concurrent", "100-M", 10, now=NOW + 1) == 0
    finally:
        for client in clients:
            await client.aclose()


async def test_admission_reserves_only_when_every_window_has_room(
    budgets: tuple[TokenBudget, TokenBudget],
) -> None:
    first, second = budgets
    rate = "100-M,150-H"
    assert await first.admit("f/r", rate, 90, now=NOW) == 0
    assert await second.admit("f/r", rate, 90, now=NOW + 1) == 0  # 90 < 100: admitted, 180 held
    assert await first.admit("f/r", rate, 1, now=NOW + 2) == 58  # the minute is spent
    await second.charge("f/r", rate, -120, now=NOW)  # the two used 60 between them
    assert await first.admit("f/r", rate, 1, now=NOW + 3) == 0
