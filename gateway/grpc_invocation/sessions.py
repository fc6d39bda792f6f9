"""gRPC sessions named by ``nvcf-reqid``: which calls may resume which session.

A call without ``nvcf-reqid`` opens a session (its id goes back as ``nvcf-reqid`` response
metadata); a call that names one resumes it when it is known, for the same function and account,
and has been idle less than ``IDLE_SECONDS`` (NVCF keeps idle sessions 30 s). Anything else is
NVCF's "no existing session found" (NOT_FOUND). The container sees the session id as the
``nvcf-reqid`` metadata of every call of the session. With Redis the record is shared by every
gateway process; new sessions are written behind the call (one pipelined round trip for all
opened meanwhile), not awaited by it: the client learns the id only when the container answers,
long after the write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("gateway.grpc")

IDLE_SECONDS = 30


class GrpcSessions(Protocol):
    async def open(self, session_id: str, function_id: str, nca_id: str) -> None: ...

    async def resume(self, session_id: str, function_id: str, nca_id: str) -> bool: ...


class MemorySessions:
    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._items: dict[str, tuple[str, float]] = {}

    async def open(self, session_id: str, function_id: str, nca_id: str) -> None:
        now = time.monotonic()
        if len(self._items) > 10_000:
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
        self._items[session_id] = (f"{function_id} {nca_id}", now + self.idle_seconds)

    async def resume(self, session_id: str, function_id: str, nca_id: str) -> bool:
        found = self._items.get(session_id)
        now = time.monotonic()
        if found is None or found[1] <= now or found[0] != f"{function_id} {nca_id}":
            return False
        self._items[session_id] = (found[0], now + self.idle_seconds)
        return True


class RedisSessions:
    def __init__(self, redis: Redis, idle_seconds: int = IDLE_SECONDS) -> None:
        self.redis = redis
        self.idle_seconds = idle_seconds
        self._opened: list[tuple[str, str]] = []
        self._writer: asyncio.Task[None] | None = None

    @staticmethod
    def _key(session_id: str) -> str:
        return f"cfgate:grpc-session:{{{session_id}}}"

    async def open(self, session_id: str, function_id: str, nca_id: str) -> None:
        self._opened.append((self._key(session_id), f"{function_id} {nca_id}"))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_opened())

    async def _write_opened(self) -> None:
        try:
            while self._opened:
                opened, self._opened = self._opened, []
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key, owner in opened:
                        pipe.set(key, owner, ex=self.idle_seconds)
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            # Those sessions cannot be resumed (NOT_FOUND): their calls themselves go on.
            log.warning("gRPC sessions not recorded: %s", exc)
            self._opened.clear()
        finally:
            self._writer = None

    async def resume(self, session_id: str, function_id: str, nca_id: str) -> bool:
        key = self._key(session_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.expire(key, self.idle_seconds, xx=True)
            found, _ = await pipe.execute()
        owner = found.decode() if isinstance(found, bytes) else found
        return owner == f"{function_id} {nca_id}"


def grpc_sessions(redis: Redis | None) -> GrpcSessions:
    return RedisSessions(redis) if redis is not None else MemorySessions()
