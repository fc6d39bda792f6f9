"""Waiting for something another process or Redis does: poll until true, fail after a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


async def until_true(check: Callable[[], bool], *, timeout: float = 20.0, what: str = "condition") -> None:
    async def wrapped() -> bool:
        return check()

    await eventually(wrapped, timeout=timeout, what=what)
