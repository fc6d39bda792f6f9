"""``llmConfig.tokenRateLimit``: tokens per fixed window per model, counted from reported usage.

A request is admitted while every window of the model's rule still has tokens left, and the
same step (atomic: one Lua script on Redis) *reserves* its estimate in those windows
(``gateway.llm.estimate.reservation``: prompt plus ``max_tokens``). When its answer ends the
reservation is settled against what it used (the container's ``usage``, or for a stream cut
before its usage chunk the prompt and the content relayed), in the windows of its admission. So
requests running at the same time see each other's reservations: a window ends at most one
reservation past its limit (more only when an answer outgrows its reservation: no
``max_tokens`` and a completion past the default reserve). With Redis the windows are shared by
every gateway process; while Redis is unreachable each process counts on its own (as
``gateway.invocation.ratelimit`` does).
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.invocation.ratelimit import parse_rate

log = logging.getLogger("gateway.llm.budget")


class TokenBudget(Protocol):
    async def wait_seconds(self, key: str, rate: str, now: float | None = None) -> int:
        """0 when ``key`` (function id/model) has tokens left in every window, else the seconds
        until the spent window ends (``now``: the clock, for tests)."""
        ...

    async def admit(self, key: str, rate: str, reserve: int, now: float | None = None) -> int:
        """``wait_seconds`` and, when 0, ``reserve`` tokens charged to every window, atomically."""
        ...

    async def charge(self, key: str, rate: str, tokens: int, now: float | None = None) -> None:
        """Add ``tokens`` (negative: give back part of a reservation) to the windows of ``now``."""
        ...


def _windows(rate: str, now: float) -> list[tuple[int, int, int]]:
    """(limit, seconds, window number) per rule."""
    return [(limit, seconds, int(now // seconds)) for limit, seconds in parse_rate(rate)]


def _retry_after(seconds: int, now: float) -> int:
    return max(1, int(seconds - now % seconds + 0.999))


class LocalTokenBudget:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._used: dict[tuple[str, int], tuple[int, int]] = {}  # (key, seconds) → (window, tokens)
        self._max_keys = max_keys

    async def wait_seconds(self, key: str, rate: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        for limit, seconds, window in _windows(rate, now):
            current, used = self._used.get((key, seconds), (window, 0))
            if current == window and used >= limit:
                return _retry_after(seconds, now)
        return 0

    async def admit(self, key: str, rate: str, reserve: int, now: float | None = None) -> int:
        now = time.time() if now is None else now
        wait = await self.wait_seconds(key, rate, now)  # no suspension between check and charge
        if not wait:
            await self.charge(key, rate, reserve, now)
        return wait

    async def charge(self, key: str, rate: str, tokens: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if len(self._used) > self._max_keys:
            self._used.clear()
        for _limit, seconds, window in _windows(rate, now):
            current, used = self._used.get((key, seconds), (window, 0))
            self._used[(key, seconds)] = (window, (used if current == window else 0) + tokens)


# KEYS: the windows' counters; ARGV: reserve, then (limit, ttl) per window → 0 admitted (reserved
# in every window), else the number of the first spent window.
_ADMIT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCRBY', key, ARGV[1])
  redis.call('EXPIRE', key, ARGV[2 * i + 1])
end
return 0
"""


class RedisTokenBudget:
    """Keys ``cfgate:tokens:{<key>}:<seconds>:<window>`` (one hash tag per model)."""

    def __init__(self, client: redis.Redis, fallback: LocalTokenBudget | None = None) -> None:
        self._client = client
        self._fallback = fallback or LocalTokenBudget()
        self._degraded = False
        self._admit = client.register_script(_ADMIT)

    @staticmethod
    def _key(key: str, seconds: int, window: int) -> str:
        return f"cfgate:tokens:{{{key}}}:{seconds}:{window}"

    async def wait_seconds(self, key: str, rate: str, now: float | None = None) -> int:
        now = time.time() if now is None else now
        rules = _windows(rate, now)
        try:
            used = await self._client.mget([self._key(key, s, w) for _, s, w in rules])
        except RedisError as exc:
            self._degrade(exc)
            return await self._fallback.wait_seconds(key, rate, now)
        self._recover()
        for (limit, seconds, _), value in zip(rules, used, strict=True):
            if value is not None and int(value) >= limit:
                return _retry_after(seconds, now)
        return 0

    async def admit(self, key: str, rate: str, reserve: int, now: float | None = None) -> int:
        now = time.time() if now is None else now
        rules = _windows(rate, now)
        args: list[int] = [reserve]
        for limit, seconds, _ in rules:
            args += [limit, seconds + 1]
        try:
            spent = int(await self._admit(keys=[self._key(key, s, w) for _, s, w in rules], args=args))
        except RedisError as exc:
            self._degrade(exc)
            return await self._fallback.admit(key, rate, reserve, now)
        self._recover()
        return _retry_after(rules[spent - 1][1], now) if spent else 0

    async def charge(self, key: str, rate: str, tokens: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for _, seconds, window in _windows(rate, now):
                    name = self._key(key, seconds, window)
                    pipe.incrby(name, tokens)
                    pipe.expire(name, seconds + 1)
                await pipe.execute()
        except RedisError as exc:
            self._degrade(exc)
            await self._fallback.charge(key, rate, tokens, now)
            return
        self._recover()

    def _degrade(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("token rate limits counted per process while Redis is unreachable: %s", exc)
            self._degraded = True

    def _recover(self) -> None:
        if self._degraded:
            log.info("token rate limits shared through Redis again")
            self._degraded = False
