"""A gateway served by uvicorn in a thread, for synchronous clients (schemathesis)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from gateway.app import Gateway
from gateway.server import uvicorn_config
from tests.conftest import make_settings


def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    asyncio.run(server.serve(sockets=[sock]))


@contextlib.contextmanager
def threaded_gateway(tmp: Path, database: str, name: str) -> Iterator[tuple[Gateway, str]]:
    """(the started gateway, its base URL); stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn_config(make_settings(tmp, database=database, port=port))
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=_serve, args=(server, sock), name=name, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the gateway did not start"
            thread.join(0.02)
        gateway = config.app
        assert isinstance(gateway, Gateway)
        yield gateway, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
