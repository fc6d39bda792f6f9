"""Running a worker agent as its process's one job: logging, the heap, SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from typing import Protocol

from invoker import logs


class Agent(Protocol):
    def request_stop(self) -> None: ...

    async def run(self) -> int: ...


def configure_logging(level: str, fmt: str = "text") -> None:
    """Text or JSON lines on stderr, redacted (``invoker.logs``)."""
    logs.configure_logging(level, fmt)


async def run_agent(make: Callable[[], Agent]) -> int:
    """The agent ``make`` builds (on the running loop), run until it ends; SIGTERM/SIGINT ask it
    to stop gracefully."""
    agent = make()
    # This process is the agent's alone: modules and start-up objects out of every later full
    # collection (shorter GC pauses under load).
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.request_stop)
    try:
        return await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
