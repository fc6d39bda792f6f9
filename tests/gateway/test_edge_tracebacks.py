"""A hot-path handler that raises is answered 500 problem+json, and its traceback is logged through
``gateway.tracebacks``: once per cause, one line per repeat (a failure a client can trigger must
not write a traceback per request). Real uvicorn hosting the edge protocol on a loopback port."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
import uvicorn

from gateway.edge.budget import ByteBudget
from gateway.edge.exchange import Exchange, HotRequest
from gateway.edge.protocol import EdgeProtocol
from gateway.settings import Settings
from tests.servers import find_free_port


class _FailingApp:
    def __init__(self, eager: bool) -> None:
        self.settings = Settings()
        self.budget = ByteBudget(0)
        self.eager = eager

    def hot_handler(self, request: HotRequest) -> Any:
        # Eager: the handler's first step runs in the parser callback (no task). Two places that
        # raise, so that each case is a cause of its own.
        request.eager = self.eager
        return self._fail_in_place if self.eager else self._fail_in_task

    async def _fail_in_task(self, exchange: Exchange) -> None:
        raise RuntimeError("secret-input-0123")

    async def _fail_in_place(self, exchange: Exchange) -> None:
        raise RuntimeError("secret-input-0123")

    async def control(self, scope: Any, receive: Any, send: Any, decision: object) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("eager", [False, True])
async def test_hot_path_exceptions_log_one_traceback_per_cause(eager: bool) -> None:
    app = _FailingApp(eager)
    port = find_free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=EdgeProtocol, lifespan="off", log_level="warning", loop="asyncio"
    )
    server = uvicorn.Server(config)
    handler = _Collect()
    logger = logging.getLogger("gateway.edge")
    logger.addHandler(handler)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done()
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):
                answer = await client.post(f"/hot/{eager}", content=b"{}")
                assert answer.status_code == 500
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["detail"] == "Internal error"
    finally:
        server.should_exit = True
        await serving
        logger.removeHandler(handler)
    failures = [r for r in handler.records if r.getMessage().startswith("exception on the hot path")]
    assert [r.levelno for r in failures] == [logging.ERROR, logging.WARNING, logging.WARNING]
    assert [r.exc_info is not None for r in failures] == [True, False, False]
    assert all("secret-input-0123" not in r.getMessage() for r in failures)
