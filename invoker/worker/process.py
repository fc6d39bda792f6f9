"""Running a worker agent as its process's one job: logging, the heap, SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from typing import Protocol


class Agent(Protocol):
    def request_stop(self) -> None: ...

    async def run(self) -> int: ...


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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
