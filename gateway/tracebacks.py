"""Tracebacks logged once per cause and window, a one-line summary otherwise.

A failure that unauthenticated input can trigger must not write a traceback per request: that
turns the log into a flooding lever (each traceback is kilobytes). A *cause* is the exception type
and the innermost frame that raised it (file and line), so two different bugs are both shown in
full, each at most once per ``every`` seconds; repeats in between log one line (type and place
only: messages may quote the input, and input may hold secrets).
"""

from __future__ import annotations

import logging
import time
import traceback

__all__ = ["TRACEBACK_EVERY_SECONDS", "log_failure"]

TRACEBACK_EVERY_SECONDS = 60.0
_MAX_CAUSES = 1024

Cause = tuple[str, str, int]
# cause -> (monotonic time its traceback was last logged, repeats since then)
_seen: dict[Cause, tuple[float, int]] = {}


def _cause(exc: BaseException) -> Cause:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return (type(exc).__qualname__, "?", 0)
    last = frames[-1]
    return (type(exc).__qualname__, last.filename, last.lineno or 0)


def log_failure(
    logger: logging.Logger, what: str, exc: BaseException, *, every: float = TRACEBACK_EVERY_SECONDS
) -> bool:
    """Log ``exc`` under ``what`` (no input in it); True when its traceback was written."""
    cause = _cause(exc)
    now = time.monotonic()
    last = _seen.get(cause)
    if last is None or now - last[0] >= every:
        if last is None and len(_seen) >= _MAX_CAUSES:
            _seen.clear()  # bounded whatever the input; worst case a traceback is shown again
        _seen[cause] = (now, 0)
        repeats = f"; {last[1]} repeat(s) since the last traceback" if last and last[1] else ""
        logger.error(
            "%s: %s (traceback shown at most every %gs per cause%s)", what, cause[0], every, repeats, exc_info=exc
        )
        return True
    _seen[cause] = (last[0], last[1] + 1)
    logger.warning("%s: %s at %s:%d (traceback logged earlier)", what, *cause)
    return False
