"""The one way this gateway opens Redis: short timeouts, no retries, so an outage fails fast.

Every caller handles ``redis.exceptions.RedisError`` itself (503, a local fallback, or a retry
loop with backoff); a client that retried or waited the library's 5 s defaults would turn a Redis
outage into hanging requests. The pool blocks (up to the same timeout) when all its connections
are busy rather than failing at once, so a burst of requests waits its turn instead of erroring.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

SOCKET_TIMEOUT_SECONDS = 1.0
HEALTH_CHECK_SECONDS = 5
MAX_CONNECTIONS = 64


async def connect(url: str) -> redis.Redis:
    """A client for ``url`` (connections are made lazily: Redis may be down at start-up)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    return redis.Redis.from_pool(pool)
