"""Per-function rate limits (NVCF ``rateLimit`` like ``100-S`` or ``5-M,100-H``), in process.

Each rule is a fixed window per (function, rule); a request must fit every rule. Windows are
counted per function version's function id (NVCF limits the function), optionally per caller
account. ``RedisRateLimiter`` shares the windows among many processes behind the async
``RateLimit`` interface, which ``LocalRateLimit`` gives the in-process limiter too.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from invoker.metrics.backend import BACKEND_ERRORS

log = logging.getLogger("gateway.ratelimit")

UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600, "D": 86400}


def parse_rate(rate: str) -> list[tuple[int, int]]:
    """``"5-M,100-H"`` → ``[(5, 60), (100, 3600)]``."""
    rules = []
    for part in rate.split(","):
        count, _, unit = part.strip().partition("-")
        rules.append((int(count), UNIT_SECONDS[unit.upper()]))
    return rules


class RateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[tuple[str, int], tuple[int, int]] = {}  # (key, seconds) → (window, count)
        self._rules: dict[str, list[tuple[int, int]]] = {}
        self._max_keys = max_keys

    def allow(self, key: str, rate: str, now: float | None = None) -> bool:
        rules = self._rules.get(rate)
        if rules is None:
            rules = self._rules[rate] = parse_rate(rate)
        now = time.time() if now is None else now
        windows = self._windows
        if len(windows) > self._max_keys:
            windows.clear()
        updates = []
        for limit, seconds in rules:
            window = int(now // seconds)
            current, count = windows.get((key, seconds), (window, 0))
            if current != window:
                count = 0
            if count >= limit:
                return False
            updates.append(((key, seconds), (window, count + 1)))
        for slot, value in updates:
            windows[slot] = value
        return True


class RateLimit(Protocol):
    """What the invocation service asks: may this request of ``key`` (a function id) go ahead?"""

    async def allow(self, key: str, rate: str) -> bool: ...


class LocalRateLimit:
    """The in-process limiter behind the async interface (the embedded default)."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter or RateLimiter()

    async def allow(self, key: str, rate: str) -> bool:
        return self.limiter.allow(key, rate)


# Every rule is checked before any is counted, as in RateLimiter: a refused request uses up nothing.
_ALLOW = """
local n = #KEYS
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then return 0 end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[n + i]) end
end
return 1
"""


class RedisRateLimiter:
    """Fixed windows counted in Redis, so every gateway process shares one budget per function.

    Keys ``cfgate:rate:{<key>}:<seconds>:<window>`` (one hash tag per function: the rules of one
    function sit in one Redis Cluster slot, as one script needs). While Redis is unreachable the
    check does not need it: each process falls back to its own windows (so the cluster admits at
    most N times the limit) rather than refusing every request (fail closed) or none (fail open).
    """

    def __init__(self, client: redis.Redis, fallback: RateLimiter | None = None) -> None:
        self._script = client.register_script(_ALLOW)
        self._fallback = fallback or RateLimiter()
        self._rules: dict[str, list[tuple[int, int]]] = {}
        self._degraded = False

    async def allow(self, key: str, rate: str, now: float | None = None) -> bool:
        rules = self._rules.get(rate)
        if rules is None:
            rules = self._rules[rate] = parse_rate(rate)
        now = time.time() if now is None else now
        keys = [f"cfgate:rate:{{{key}}}:{seconds}:{int(now // seconds)}" for _, seconds in rules]
        args = [limit for limit, _ in rules] + [seconds + 1 for _, seconds in rules]
        try:
            allowed = await self._script(keys=keys, args=args)
        except RedisError as exc:
            BACKEND_ERRORS.redis += 1
            if not self._degraded:
                log.warning("rate limits counted per process while Redis is unreachable: %s", exc)
                self._degraded = True
            return self._fallback.allow(key, rate, now)
        if self._degraded:
            log.info("rate limits shared through Redis again")
            self._degraded = False
        return bool(allowed)
