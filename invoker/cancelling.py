"""Background loops that retry on Redis errors must still end when they are cancelled.

redis-py can turn a cancellation that arrives inside a command into a connection error. A loop
that logs such an error and retries would then swallow its owner's cancel, and the owner's
``stop`` (cancel + gather) waits forever: the intermittent 120 s teardown hangs seen in tests.
"""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancelling"]


def raise_if_cancelling(exc: BaseException | None = None) -> None:
    """Raise ``CancelledError`` when the running task has been asked to stop (also after a command
    that swallowed the cancellation and returned normally: call it at the top of the loop too)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc
