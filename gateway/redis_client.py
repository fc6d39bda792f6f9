"""The gateway's Redis client (``--redis URL``), tuned to fail fast rather than hang.

Short socket timeouts and a single quick retry: while Redis is unreachable, requests that need it
get a 503 within about a second instead of waiting; the pool reconnects by itself once Redis is
back. ``socket_timeout`` stays above the blocking reads (reply stream, 1 s) it also serves.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 3.0


def connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        retry=Retry(ConstantBackoff(0.05), 1),
        max_connections=256,
        health_check_interval=10,
    )
