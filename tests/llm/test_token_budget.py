"""``tokenRateLimit`` windows (``gateway.llm.budget``), in process and shared through a real Redis:
a model may start requests until a window's tokens are spent, then waits for the window's end."""

from __future__ import annotations

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
