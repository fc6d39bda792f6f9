"""gRPC sessions named by ``nvcf-reqid``: which calls may resume which session.

A call without ``nvcf-reqid`` opens a session (its id goes back as ``nvcf-reqid`` response
metadata); a call that names one resumes it when it is known, for the same function and account,
and has been idle less than ``IDLE_SECONDS`` (NVCF keeps idle sessions 30 s). Anything else is
NVCF's "no existing session found" (NOT_FOUND). The container sees the session id as the
``nvcf-reqid`` metadata of every call of the session. With Redis the record is shared by every
gateway process.
"""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis

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

    @staticmethod
    def _key(session_id: str) -> str:
        return f"cfgate:grpc-session:{{{session_id}}}"

    async def open(self, session_id: str, function_id: str, nca_id: str) -> None:
        await self.redis.set(self._key(session_id), f"{function_id} {nca_id}", ex=self.idle_seconds)

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
