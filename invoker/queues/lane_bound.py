"""The queue bound of a version served in priority lanes (``invoker.queues.priority``), held
across its lanes.

Every lane is a queue of its own on the inner queue, and its enqueue checks only its own depth.
An enqueue into one of several lanes is therefore *admitted* first, against the waiting entries
of every lane plus the admissions still on their way in:

- **Redis** (standalone, as ``cfgate serve --redis`` runs it): one Lua script reads every lane's
  waiting count (``h`` list + ``n`` counter of ``invoker.queues.redis``) and the version's
  admissions in flight not yet in a lane's state hash ``w`` (a sorted set
  ``cfgate:lanes:{<version>}:r``, scored by Redis's clock), and adds this one only when the total
  is under the bound: O(lanes × admissions in flight). The entry is then enqueued and its
  admission removed, so racing enqueues in any process see it the whole time. An admission
  whose process died between the two steps lapses after ``ADMISSION_TTL_MS``. Cost: two more
  round trips per enqueue, only for versions with several lanes.
- **Memory**, or Redis with cluster key discipline (lanes in different slots, which one script
  cannot read): enqueues of a version are serialized in this process, each checked against the
  lanes' depth. On a Redis Cluster racing processes may still pass the bound by their number.

Entries coming back (requeue, reclaim of a dead process's work) are not admitted again, as on a
single queue: the bound limits new work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from redis.exceptions import RedisError

from invoker.errors import BackendUnavailable, QueueFull
from invoker.queues.base import InvocationQueue
from invoker.queues.redis import RedisQueue, version_keys

ADMISSION_TTL_MS = 10_000

# KEYS admissions, then (h, n, w) of every lane; ARGV bound, request id, ttl ms → 1 admitted, 0 full.
# An admission whose entry is already in a lane (``w`` knows it) is counted there, not twice.
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
local waiting = 0
for i = 2, #KEYS, 3 do
  waiting = waiting + redis.call('LLEN', KEYS[i]) + tonumber(redis.call('GET', KEYS[i + 1]) or '0')
end
for _, rid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local queued = false
  for i = 4, #KEYS, 3 do
    if redis.call('HEXISTS', KEYS[i], rid) == 1 then queued = true end
  end
  if not queued then waiting = waiting + 1 end
end
if waiting >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


def admissions_key(version_id: str) -> str:
    return f"cfgate:lanes:{{{version_id}}}:r"


class LaneBound:
    def __init__(self, inner: InvocationQueue) -> None:
        self._inner = inner
        self._redis = inner if isinstance(inner, RedisQueue) and not inner.cluster else None
        self._script = None if self._redis is None else self._redis.redis.register_script(ADMIT)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # version → lock, users

    @asynccontextmanager
    async def admitted(self, version_id: str, request_id: str, lanes: list[str], limit: int) -> AsyncIterator[None]:
        """Enqueue into one of ``lanes`` (the version's lane queues) inside this, or ``QueueFull``."""
        if self._script is not None:
            async with self._redis_admission(version_id, request_id, lanes, limit):
                yield
            return
        lock, users = self._locks.get(version_id) or (asyncio.Lock(), 0)
        self._locks[version_id] = (lock, users + 1)
        try:
            async with lock:
                if sum([await self._inner.depth(lane) for lane in lanes]) >= limit:
                    raise QueueFull(f"queue of version {version_id} is full")
                yield
        finally:
            lock, users = self._locks[version_id]
            if users == 1:
                del self._locks[version_id]
            else:
                self._locks[version_id] = (lock, users - 1)

    @asynccontextmanager
    async def _redis_admission(
        self, version_id: str, request_id: str, lanes: list[str], limit: int
    ) -> AsyncIterator[None]:
        assert self._script is not None and self._redis is not None
        key = admissions_key(version_id)
        keys = [key]
        for lane in lanes:
            lane_keys = version_keys(lane)
            keys += [lane_keys[1], lane_keys[6], lane_keys[2]]
        try:
            admitted = await self._script(keys, [limit, request_id, ADMISSION_TTL_MS])
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"redis unavailable: {exc}") from exc
        if not int(admitted):
            raise QueueFull(f"queue of version {version_id} is full")
        try:
            yield
        finally:
            with suppress(RedisError, OSError):  # else it lapses after ADMISSION_TTL_MS
                await self._redis.redis.zrem(key, request_id)
