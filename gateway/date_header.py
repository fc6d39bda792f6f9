"""The ``Date`` response header, right to the second.

uvicorn re-formats its ``Date`` every tenth 0.1 s tick of its main loop, so the header runs up to
two seconds behind (more when the loop is busy). ``DatedServer`` instead re-formats it on a loop
timer due just after each wall-clock second turns.
"""

from __future__ import annotations

import asyncio
import math
import time
from email.utils import formatdate

import uvicorn

# Fire this long after the second turns, so the timer never formats the second that is ending.
_AFTER_THE_SECOND = 0.001


def http_date(now: float | None = None) -> bytes:
    return formatdate(time.time() if now is None else now, usegmt=True).encode()


class DatedServer(uvicorn.Server):
    """uvicorn's server whose ``Date`` changes when the second changes."""

    _timer: asyncio.TimerHandle | None = None

    def _headers(self) -> list[tuple[bytes, bytes]]:
        date = [(b"date", http_date())] if self.config.date_header else []
        return date + self.config.encoded_headers

    def _tick(self) -> None:
        self.server_state.default_headers = self._headers()
        now = time.time()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(math.floor(now) + 1 - now + _AFTER_THE_SECOND, self._tick)

    async def on_tick(self, counter: int) -> bool:
        should_exit = await super().on_tick(counter)
        # uvicorn just wrote its own (late) Date: put the current one back before anyone reads it.
        self.server_state.default_headers = self._headers()
        return should_exit

    async def main_loop(self) -> None:
        self._tick()
        try:
            await super().main_loop()
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
