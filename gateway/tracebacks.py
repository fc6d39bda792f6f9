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
from collections.abc import Mapping

__all__ = ["TRACEBACK_EVERY_SECONDS", "RateLimitedTracebacks", "install_on", "log_failure"]

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


def _admit(cause: Cause, every: float) -> tuple[bool, int]:
    """Whether this cause's traceback may be shown now, and how many repeats it replaces."""
    now = time.monotonic()
    last = _seen.get(cause)
    if last is None or now - last[0] >= every:
        if last is None and len(_seen) >= _MAX_CAUSES:
            _seen.clear()  # bounded whatever the input; worst case a traceback is shown again
        _seen[cause] = (now, 0)
        return True, last[1] if last else 0
    _seen[cause] = (last[0], last[1] + 1)
    return False, 0


class RateLimitedTracebacks(logging.Filter):
    """For loggers we do not call ourselves (the server layer's "Exception in ASGI application"):
    a record's traceback is kept once per cause and window, else cut to a one-line summary."""

    def __init__(self, every: float = TRACEBACK_EVERY_SECONDS) -> None:
        super().__init__()
        self.every = every

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        cause = _cause(exc)
        shown, _ = _admit(cause, self.every)
        if not shown:
            message = record.getMessage().replace("%", "%%")
            record.msg = f"{message}: %s at %s:%d (traceback logged earlier)"
            record.args = cause
            record.exc_info = None
            record.exc_text = None
        return True


def install_on(logger_name: str) -> None:
    """Attach ``RateLimitedTracebacks`` to a logger once (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RateLimitedTracebacks) for f in logger.filters):
        logger.addFilter(RateLimitedTracebacks())


def log_failure(
    logger: logging.Logger,
    what: str,
    exc: BaseException,
    *,
    every: float = TRACEBACK_EVERY_SECONDS,
    extra: Mapping[str, object] | None = None,
) -> bool:
    """Log ``exc`` under ``what`` (no input in it); True when its traceback was written."""
    cause = _cause(exc)
    shown, repeated = _admit(cause, every)
    if shown:
        repeats = f"; {repeated} repeat(s) since the last traceback" if repeated else ""
        logger.error(
            "%s: %s (traceback shown at most every %gs per cause%s)",
            what,
            cause[0],
            every,
            repeats,
            exc_info=exc,
            extra=extra,
        )
        return True
    logger.warning("%s: %s at %s:%d (traceback logged earlier)", what, *cause, extra=extra)
    return False
