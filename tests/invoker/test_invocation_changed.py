"""``Invocation.changed``: wakes every waiter on the next change, times out with False, and
leaves no waiter behind after a timeout or a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from invoker.invocations import Invocation, InvocationRequest


def make() -> Invocation:
    return Invocation(
        InvocationRequest(
            request_id="r1",
            function_id="f1",
            version_id="v1",
            method="POST",
            path="/",
            headers=[],
            body=b"",
            compat=True,
            deadline_ms=0,
        )
    )


async def test_a_change_wakes_every_waiter_with_true() -> None:
    invocation = make()
    first = asyncio.ensure_future(invocation.changed(None))
    second = asyncio.ensure_future(invocation.changed(30.0))
    await asyncio.sleep(0)
    invocation.chunk(b"data")
    assert await first is True
    assert await second is True
    assert invocation._waiters == []


async def test_no_change_within_the_timeout_is_false() -> None:
    invocation = make()
    assert await invocation.changed(0.01) is False
    assert invocation._waiters == []


async def test_a_change_made_before_the_wait_does_not_count() -> None:
    invocation = make()
    invocation.chunk(b"earlier")
    assert await invocation.changed(0.01) is False


async def test_a_cancelled_wait_is_forgotten() -> None:
    invocation = make()
    waiting = asyncio.ensure_future(invocation.changed(None))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert invocation._waiters == []
