"""The gateway's Redis client (``--redis URL``), tuned to fail fast rather than hang.

Short socket timeouts and a single quick retry: while Redis is unreachable, requests that need it
get a 503 within about a second instead of waiting; the pool reconnects by itself once Redis is
back. ``socket_timeout`` stays above the blocking reads (reply stream, 1 s) it also serves.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

CONNECT_TIMEOUT = 0.5
SOCKET_TIMEOUT = 3.0


MAX_CONNECTIONS = 64
POOL_TIMEOUT = 2.0  # waiting for a free connection under load, before a 503


def connect(url: str) -> Redis:
    # A blocking pool: past MAX_CONNECTIONS callers wait for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        health_check_interval=10,
        retry=Retry(ConstantBackoff(0.05), 1),
    )
    return Redis.from_pool(pool)
