"""``DatedServer``: the Date header is re-formatted when the wall-clock second turns, not up to two
seconds later as uvicorn's 0.1 s tick counter does."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest
import uvicorn

from gateway.date_header import DatedServer


async def _noop_app(scope: object, receive: object, send: object) -> None:
    return None


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def _date(server: DatedServer) -> bytes:
    headers = dict(server.server_state.default_headers)
    return headers[b"date"]


async def test_the_date_changes_with_the_second_and_uvicorn_ticks_do_not_set_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock(1_800_000_000.25)
    monkeypatch.setattr(time, "time", clock.time)
    server = DatedServer(uvicorn.Config(_noop_app, lifespan="off", log_level="warning"))
    server._tick()
    try:
        assert _date(server) == formatdate(1_800_000_000, usegmt=True).encode()
        timer = server._timer
        assert timer is not None
        # Due just after the second turns (0.75 s from 'now'), not on the next 10-tick boundary.
        assert timer.when() - asyncio.get_running_loop().time() == pytest.approx(0.751, abs=0.05)

        clock.now = 1_800_000_001.001
        timer._run()  # the loop would run it now
        assert _date(server) == formatdate(1_800_000_001, usegmt=True).encode()

        # uvicorn re-formats only on every tenth tick (and then from a possibly late loop): a
        # tick in between still leaves the current second in place, never an older one.
        clock.now = 1_800_000_002.5
        assert await server.on_tick(5) is False
        assert _date(server) == formatdate(1_800_000_002, usegmt=True).encode()
    finally:
        if server._timer is not None:
            server._timer.cancel()
