"""Per-function rate limits (NVCF ``rateLimit`` like ``100-S`` or ``5-M,100-H``), in process.

Each rule is a fixed window per (function, rule); a request must fit every rule. Windows are
counted per function version's function id (NVCF limits the function), optionally per caller
account. The Redis-shared variant for many processes keeps the same interface.
"""

from __future__ import annotations

import time

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
