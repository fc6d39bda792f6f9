"""The tiny echo function ("the container"): uvicorn raw ASGI, as DESIGN §8 measured it.

``POST <any path>`` answers the request body as ``application/json``; ``GET /health`` answers
``{"status":"ok"}``; ``GET|POST /sse?events=N&interval=S`` streams N server-sent events (chunked),
S seconds apart (0: as fast as the connection takes them).

    python -m bench.servers.echo --port P
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Message = MutableMapping[str, Any]
JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
HEALTH = b'{"status":"ok"}'


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/sse":
        await _events(scope, send)
        return
    payload = HEALTH if path == "/health" else body
    headers = [*JSON, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _events(scope: MutableMapping[str, Any], send: Callable[[Message], Awaitable[None]]) -> None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    events = int((query.get("events") or ["10"])[0])
    interval = float((query.get("interval") or ["0"])[0])
    await send({"type": "http.response.start", "status": 200, "headers": SSE})
    for i in range(events):
        if interval:
            await asyncio.sleep(interval)
        await send({"type": "http.response.body", "body": b'id: %d\ndata: {"i": %d}\n\n' % (i, i), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
