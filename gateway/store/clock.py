"""Epoch-millisecond times and their RFC 3339 rendering (what nvcf-cli parses)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int) -> str:
    """``2025-11-20T22:15:29.237Z``: millisecond precision, UTC, as the NVCF services render it."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_rfc3339(value: str) -> int:
    """Parse an RFC 3339 timestamp (``Z`` or an offset required) into epoch milliseconds."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or "T" not in value.upper():
        raise ValueError("timestamp needs a date, a time and a UTC offset")
    return int(parsed.timestamp() * 1000)
