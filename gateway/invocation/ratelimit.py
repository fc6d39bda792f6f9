"""Rate limit windows (NVCF rates like ``100-S`` or ``5-M,100-H``), in process or shared in Redis.

A request is a list of ``RateCheck``s (``gateway.invocation.rate_policy`` decides which tiers of a
function's ``rateLimit`` apply to a caller); each rule of each check is a fixed window counted
under the check's key, and the request goes ahead only if every window has room. Every rule is
checked before any is counted: a refused request uses up nothing. A refusal says how many seconds
until the last of the full windows it hit ends (the ``Retry-After``).

``RedisRateLimiter`` shares the windows among every gateway process of an installation behind
the async ``RateLimit`` interface, which ``LocalRateLimit`` gives the in-process limiter too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from invoker.metrics.backend import BACKEND_ERRORS

log = logging.getLogger("gateway.ratelimit")

UNIT_SECONDS = {"S": 1, "M": 60, "H": 3600, "D": 86400}


class RateCheck(NamedTuple):
    """One tier's windows: counted under ``key``, grouped by ``scope`` (a Redis Cluster hash tag:
    every check of one request shares it, so one script sees all of them)."""

    scope: str
    key: str
    rate: str


def parse_rate(rate: str) -> list[tuple[int, int]]:
    """``"5-M,100-H"`` → ``[(5, 60), (100, 3600)]``; of two rules of one unit the stricter stays."""
    rules: dict[int, int] = {}
    for part in rate.split(","):
        count, _, unit = part.strip().partition("-")
        seconds = UNIT_SECONDS[unit.upper()]
        rules[seconds] = min(int(count), rules.get(seconds, int(count)))
    return [(limit, seconds) for seconds, limit in rules.items()]


def retry_after(seconds: int, now: float) -> int:
    """Whole seconds until the fixed window of ``seconds`` holding ``now`` ends (at least 1)."""
    return max(1, math.ceil((int(now // seconds) + 1) * seconds - now))


class _Rules:
    def __init__(self) -> None:
        self._parsed: dict[str, list[tuple[int, int]]] = {}

    def of(self, rate: str) -> list[tuple[int, int]]:
        rules = self._parsed.get(rate)
        if rules is None:
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            rules = self._parsed[rate] = parse_rate(rate)
        return rules


class RateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[tuple[str, str, int], tuple[int, int]] = {}  # (scope, key, s) → (window, count)
        self._rules = _Rules()
        self._max_keys = max_keys

    def check(self, checks: Sequence[RateCheck], now: float | None = None) -> int:
        """0 when the request may go ahead (and is counted), else its Retry-After in seconds."""
        now = time.time() if now is None else now
        windows = self._windows
        if len(windows) > self._max_keys:
            windows.clear()
        updates = []
        retry = 0
        for scope, key, rate in checks:
            for limit, seconds in self._rules.of(rate):
                window = int(now // seconds)
                slot = (scope, key, seconds)
                current, count = windows.get(slot, (window, 0))
                if current != window:
                    count = 0
                if count >= limit:
                    retry = max(retry, retry_after(seconds, now))
                updates.append((slot, (window, count + 1)))
        if retry:
            return retry
        for slot, value in updates:
            windows[slot] = value
        return 0

    def allow(self, key: str, rate: str, now: float | None = None) -> bool:
        return self.check([RateCheck(key, "", rate)], now) == 0


class RateLimit(Protocol):
    """What the invocation service asks: 0 if this request may go ahead, else its Retry-After
    (``allow``: one rate under one key, as a yes or no)."""

    async def check(self, checks: Sequence[RateCheck]) -> int: ...

    async def allow(self, key: str, rate: str) -> bool: ...


class LocalRateLimit:
    """The in-process limiter behind the async interface (the embedded default)."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter or RateLimiter()

    async def check(self, checks: Sequence[RateCheck]) -> int:
        return self.limiter.check(checks)

    async def allow(self, key: str, rate: str) -> bool:
        return self.limiter.allow(key, rate)


# Every window is checked before any is counted, as in RateLimiter: a refused request uses up
# nothing. Answers the (1-based) indices of the full windows; none: counted, go ahead.
_CHECK = """
local n = #KEYS
local full = {}
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then full[#full + 1] = i end
end
if #full > 0 then return full end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[n + i]) end
end
return full
"""


class RedisRateLimiter:
    """Fixed windows counted in Redis, so every gateway process of the installation shares them.

    Keys ``cfgate:rate:{<scope>}:<key>:<seconds>:<window>`` (the scope, a function version, is the
    hash tag: a request's windows sit in one Redis Cluster slot, as one script needs). While Redis
    is unreachable the check does not need it: each process falls back to its own windows (so the
    installation admits at most N times the limit) rather than refusing every request (fail
    closed) or none (fail open).
    """

    def __init__(self, client: redis.Redis, fallback: RateLimiter | None = None) -> None:
        self._script = client.register_script(_CHECK)
        self._fallback = fallback or RateLimiter()
        self._rules = _Rules()
        self._degraded = False

    async def check(self, checks: Sequence[RateCheck], now: float | None = None) -> int:
        now = time.time() if now is None else now
        keys: list[str] = []
        limits: list[int] = []
        periods: list[int] = []
        for scope, key, rate in checks:
            for limit, seconds in self._rules.of(rate):
                keys.append(f"cfgate:rate:{{{scope}}}:{key}:{seconds}:{int(now // seconds)}")
                limits.append(limit)
                periods.append(seconds)
        if not keys:
            return 0
        try:
            full = await self._script(keys=keys, args=limits + [s + 1 for s in periods])
        except RedisError as exc:
            BACKEND_ERRORS.redis += 1
            if not self._degraded:
                log.warning("rate limits counted per process while Redis is unreachable: %s", exc)
                self._degraded = True
            return self._fallback.check(checks, now)
        if self._degraded:
            log.info("rate limits shared through Redis again")
            self._degraded = False
        return max((retry_after(periods[int(i) - 1], now) for i in full), default=0)

    async def allow(self, key: str, rate: str, now: float | None = None) -> bool:
        return await self.check([RateCheck(key, "", rate)], now) == 0
