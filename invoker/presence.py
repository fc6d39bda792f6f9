"""Which gateway processes are alive, through Redis keys that expire.

Each process has a random id and refreshes ``cfgate:alive:<id>`` every ``interval`` with a
time-to-live of ``ttl``: when a process dies (kill -9 included) its key is gone within ``ttl``,
and the others reclaim its in-flight queue entries and stop relaying replies to it. A live
process's key never lapses while Redis answers, so its entries are never taken from it however
long its invocations run (which idle-time based ``XAUTOCLAIM`` alone could not promise).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from invoker.cancelling import raise_if_cancelling

log = logging.getLogger("invoker.presence")

ALIVE_PREFIX = "cfgate:alive:"


def alive_key(process_id: str) -> str:
    return ALIVE_PREFIX + process_id


class Presence:
    def __init__(self, redis: Redis, *, ttl: float = 5.0, interval: float = 1.0, process_id: str = "") -> None:
        self.redis = redis
        self.process_id = process_id or uuid.uuid4().hex
        self.ttl = ttl
        self.interval = interval
        self._seen: dict[str, tuple[bool, float]] = {}  # process id → (alive, when checked)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Announce this process (best effort: a Redis outage at start-up is retried by the beat)."""
        try:
            await self.beat()
        except RedisError as exc:
            log.warning("redis unreachable at start-up (%s): retrying", exc)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.redis.delete(alive_key(self.process_id))
        except RedisError:
            pass  # it expires by itself

    async def beat(self) -> None:
        await self.redis.set(alive_key(self.process_id), b"1", px=int(self.ttl * 1000))

    async def _run(self) -> None:
        while True:
            raise_if_cancelling()
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except RedisError as exc:
                raise_if_cancelling(exc)
                log.warning("presence heartbeat failed: %s", exc)

    async def alive(self, process_id: str) -> bool:
        """Whether that process is alive; answers are cached for ``interval`` seconds."""
        if process_id == self.process_id:
            return True
        now = time.monotonic()
        cached = self._seen.get(process_id)
        if cached is not None and now - cached[1] < self.interval:
            return cached[0]
        found = bool(await self.redis.exists(alive_key(process_id)))
        if len(self._seen) > 4096:
            self._seen.clear()
        self._seen[process_id] = (found, now)
        return found

    async def alive_many(self, process_ids: list[str]) -> dict[str, bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for pid in process_ids:
                pipe.exists(alive_key(pid))
            found = await pipe.execute()
        return {pid: bool(n) or pid == self.process_id for pid, n in zip(process_ids, found, strict=True)}
