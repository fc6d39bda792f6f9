"""Live worker instances of every gateway process, kept in Redis with expiry.

Each process writes the instances whose streams it holds and rewrites them every ``ttl / 3``
seconds; an entry is live while its expiry (Redis server time, so hosts' clocks do not matter)
is ahead. A process that dies stops rewriting, and its instances drop out of every view within
``ttl`` plus one refresh. ``count`` and ``instances`` are synchronous (the control plane calls
them inside request handlers), so each process reads from a local view: the last full read from
Redis merged with its own instances. The view is re-read on every refresh, and at once when
another process announces a change (``notify`` publishes it; the gateway wires that to its
invalidation bus, whose ``instances`` messages call ``resync``).

While Redis is unreachable, registering and deregistering still work (the local part of the view
changes and listeners run); the other processes' instances stay as last read, so an outage does
not flip function status; everything is rewritten and re-read when Redis is back. For one ``ttl``
after Redis comes back an instance missing from it is kept: Redis may have restarted empty, or
every entry may have expired meanwhile, and the live processes need one refresh to rewrite theirs.

Keys: ``cfgate:{instances}:expiry`` (sorted set, instance id → expiry ms) and
``cfgate:{instances}:data`` (hash, instance id → JSON); one hash tag, one Redis Cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from invoker.cancelling import raise_if_cancelling
from invoker.instances import InstanceListener, LiveInstance

log = logging.getLogger("invoker.instances")

EXPIRY_KEY = "cfgate:{instances}:expiry"
DATA_KEY = "cfgate:{instances}:data"

# ARGV: ttl ms, then instance id / JSON pairs. Expiry in server time.
_WRITE = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
end
return 1
"""

# Drops expired entries, returns the JSON of the live ones.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
for i = 1, #dead do redis.call('HDEL', KEYS[2], dead[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local out = {}
for i = 1, #live do
  local data = redis.call('HGET', KEYS[2], live[i])
  if data then out[#out + 1] = data end
end
return out
"""

Announce = Callable[[str], Awaitable[None]]


class RedisInstanceRegistry:
    def __init__(self, client: redis.Redis, process_id: str, *, ttl_seconds: float = 6.0) -> None:
        self._client = client
        self._write = client.register_script(_WRITE)
        self._read = client.register_script(_READ)
        self.process_id = process_id
        self.ttl_seconds = ttl_seconds
        self._own: dict[str, LiveInstance] = {}
        self._others: dict[str, LiveInstance] = {}  # other processes' instances, as last read
        self._by_version: dict[str, dict[str, LiveInstance]] = {}
        self._listeners: list[InstanceListener] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._unreachable = False
        self._back_at = -float("inf")  # monotonic time Redis answered again after an outage
        # Tells the other processes that this version's instances changed (set by the gateway).
        self.announce: Announce | None = None

    # --- InstanceRegistry -----------------------------------------------------------------

    async def register(self, instance: LiveInstance) -> None:
        instance = dataclasses.replace(instance, process=self.process_id)
        self._own[instance.instance_id] = instance
        await self._changed()
        try:
            await self._write(keys=[EXPIRY_KEY, DATA_KEY], args=[self._ttl_ms(), *_pair(instance)])
        except RedisError as exc:
            log.warning("instance %s not written to Redis yet: %s", instance.instance_id, exc)
            return
        await self._announce(instance.version_id)

    async def deregister(self, instance_id: str) -> None:
        instance = self._own.pop(instance_id, None)
        if instance is None:
            return
        await self._changed()
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(EXPIRY_KEY, instance_id)
                pipe.hdel(DATA_KEY, instance_id)
                await pipe.execute()
        except RedisError as exc:
            log.warning("instance %s not removed from Redis (it expires): %s", instance_id, exc)
            return
        await self._announce(instance.version_id)

    def count(self, version_id: str) -> int:
        return len(self._by_version.get(version_id, ()))

    def instances(self, version_id: str) -> list[LiveInstance]:
        return sorted(self._by_version.get(version_id, {}).values(), key=lambda i: (i.started_at, i.instance_id))

    def subscribe(self, listener: InstanceListener) -> None:
        self._listeners.append(listener)

    # --- sharing --------------------------------------------------------------------------

    async def resync(self) -> None:
        """Re-read every process's live instances from Redis (raises ``RedisError`` if down)."""
        async with self._lock:
            try:
                raw = await self._read(keys=[EXPIRY_KEY, DATA_KEY])
            except RedisError:
                self._unreachable = True
                raise
            now = time.monotonic()
            if self._unreachable:
                self._unreachable, self._back_at = False, now
            # Just after an outage, what Redis lacks may only not be rewritten yet: keep it a while.
            others = dict(self._others) if now - self._back_at < self.ttl_seconds else {}
            for item in raw:
                instance = _instance(item)
                if instance is not None and instance.process != self.process_id:
                    others[instance.instance_id] = instance
            self._others = others
            await self._changed()

    async def refresh(self) -> None:
        """Rewrite this process's instances with a fresh expiry, then re-read everyone's."""
        own = list(self._own.values())
        if own:
            args: list[str | int | bytes] = [self._ttl_ms()]
            for instance in own:
                args.extend(_pair(instance))
            try:
                await self._write(keys=[EXPIRY_KEY, DATA_KEY], args=args)
            except RedisError:
                self._unreachable = True
                raise
        await self.resync()

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_alive(), name="instance-registry")

    async def close(self) -> None:
        """Stop refreshing and take this process's instances out of Redis (best effort)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own:
            with contextlib.suppress(RedisError, OSError):
                async with self._client.pipeline(transaction=True) as pipe:
                    pipe.zrem(EXPIRY_KEY, *self._own)
                    pipe.hdel(DATA_KEY, *self._own)
                    await pipe.execute()

    async def _keep_alive(self) -> None:
        reachable = True
        while True:
            await asyncio.sleep(self.ttl_seconds / 3)
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                raise_if_cancelling(exc)
                if reachable:
                    log.warning("instance registry cannot reach Redis (%s): keeping the last view", exc)
                reachable = False
                continue
            if not reachable:
                log.info("instance registry reached Redis again")
                reachable = True

    async def _announce(self, version_id: str) -> None:
        if self.announce is not None:
            try:
                await self.announce(version_id)
            except Exception:
                log.exception("announcing instances of %s failed", version_id)

    async def _changed(self) -> None:
        """Rebuild the view and tell the listeners which versions' instance sets changed."""
        before = self._by_version
        after: dict[str, dict[str, LiveInstance]] = {}
        for instance in (*self._others.values(), *self._own.values()):
            after.setdefault(instance.version_id, {})[instance.instance_id] = instance
        self._by_version = after
        changed: dict[str, str] = {}
        for version_id in before.keys() | after.keys():
            old, new = before.get(version_id, {}), after.get(version_id, {})
            if old.keys() != new.keys():
                sample = next(iter((new or old).values()))
                changed[version_id] = sample.function_id
        for version_id, function_id in changed.items():
            await self._notify(function_id, version_id)

    async def _notify(self, function_id: str, version_id: str) -> None:
        results = await asyncio.gather(
            *(listener(function_id, version_id) for listener in self._listeners), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                log.error("instance listener failed for %s/%s", function_id, version_id, exc_info=result)

    def _ttl_ms(self) -> int:
        return int(self.ttl_seconds * 1000)


def _pair(instance: LiveInstance) -> tuple[str, bytes]:
    return instance.instance_id, orjson.dumps(dataclasses.asdict(instance))


def _instance(raw: bytes) -> LiveInstance | None:
    try:
        return LiveInstance(**orjson.loads(raw))
    except (orjson.JSONDecodeError, TypeError):
        log.warning("ignoring a malformed instance entry in Redis")
        return None
