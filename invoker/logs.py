"""Log lines of every cfgate process (gateway and worker agent): text or JSON, never a secret.

``configure_logging(level, fmt)`` installs one stderr handler on the root logger with the chosen
formatter and the redaction filter. Lines about an invocation carry its ids as record fields
(``logger.warning(..., extra=invocation_fields(request))``): ``request_id`` (the NVCF-REQID),
``function_id``, ``version_id`` and ``account`` (the NCA id); a control-plane request binds its
``account`` to its task (``bind``) once its credential is known. JSON lines put every such field at
the top level; text lines append them as ``key=value``.

Redaction is a safety net on the handler, not the way secrets are kept out: whatever a line
holds that looks like a bearer token, a JWT, an ``nvapi-`` key, a secret-named query or JSON
field, or a value registered with ``register_secret`` (the worker's token, the bootstrap
secret, the master key …) is replaced by ``[redacted]`` before the line is written.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

LOG_FORMATS = ("text", "json")

REDACTED = "[redacted]"

# Record fields that name the request a line is about (explicit ``extra=``).
REQUEST_FIELDS = ("request_id", "function_id", "version_id", "account")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What a LogRecord has of its own: everything else on a record came in by ``extra=``.
# (uvicorn's color_message: the message again, with ANSI colours.)
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

_PATTERNS = (
    # Authorization: Bearer <anything>
    (re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+"), r"\1 " + REDACTED),
    # a JWT (header.payload.signature, base64url, the header starting with '{"')
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # an API key of the nvapi- format (gateway.auth.apikey_format)
    (re.compile(r"\bnvapi-[A-Za-z0-9_-]{16,}"), REDACTED),
    # secret-named query parameters and JSON / key=value fields
    (
        re.compile(
            r"(?i)(\b\w*(?:signature|secret|password|token|api[_-]?key|credential)\w*\"?\s*[=:]\s*\"?)"
            r"[^\s&,;\"'}]+"
        ),
        r"\1" + REDACTED,
    ),
)

# Fields bound to the running task (``bind``): a control-plane request's account.
_bound: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("cfgate_log_fields", default=None)

# What each of _PATTERNS needs to find somewhere in the text.
_MAY_MATCH = re.compile(r"bearer|eyj|nvapi-|signature|secret|password|token|api[_-]?key|credential")

_registered: set[str] = set()
_registered_pattern: re.Pattern[str] | None = None


class _Request(Protocol):
    request_id: str
    function_id: str
    version_id: str
    nca_id: str


def register_secret(value: str | None) -> None:
    """Never write ``value`` (a token, key or secret this process holds) into a log line."""
    global _registered_pattern
    if not value or len(value) < 8 or value in _registered:
        return
    _registered.add(value)
    _registered_pattern = re.compile("|".join(re.escape(v) for v in sorted(_registered, key=len, reverse=True)))


def bind(**fields: str) -> None:
    """Put ``fields`` on every line logged later in this task (each request runs in a task of its own)."""
    current = _bound.get()
    _bound.set({**current, **fields} if current else fields)


def redact(text: str) -> str:
    if not _may_hold_secrets(text):
        return text
    if _registered_pattern is not None:
        text = _registered_pattern.sub(REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _may_hold_secrets(text: str) -> bool:
    """One scan for what any pattern needs (most lines have none of it)."""
    if _registered_pattern is not None and _registered_pattern.search(text) is not None:
        return True
    return _MAY_MATCH.search(text.lower()) is not None


def invocation_fields(request: _Request) -> dict[str, str]:
    """The ``extra=`` of a line about an invocation (its ``InvocationRequest`` or ``pb.Invocation``)."""
    return {
        "request_id": request.request_id,
        "function_id": request.function_id,
        "version_id": request.version_id,
        "account": request.nca_id,
    }


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What ``extra=`` put on a record."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES}


class RedactingFilter(logging.Filter):
    """Redacts the message, its traceback and string fields of every record a handler writes
    (and adds the fields ``bind`` put on the task that logs it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _bound.get()
        if bound:
            for key, value in bound.items():
                if key not in record.__dict__:
                    setattr(record, key, value)
        message = record.getMessage()
        if record.args:
            record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        texts = {key: value for key, value in record_fields(record).items() if isinstance(value, str)}
        everything = "\n".join((message, record.exc_text or "", *texts.values()))
        if not _may_hold_secrets(everything):
            return True
        record.msg = redact(message)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in texts.items():
            setattr(record, key, redact(value))
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with the request's fields as ``key=value`` at its end (other extras are
    for JSON lines: a text message already says them)."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        values = record.__dict__
        fields = {name: values[name] for name in REQUEST_FIELDS if values.get(name)}
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # fields before a traceback, on the message's line
        return head + "".join(f" {k}={v}" for k, v in fields.items()) + sep + tail


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``,
    the record's extra fields, and ``exception`` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure_logging(level: str, fmt: str = "text", *, quiet: Iterable[str] = ("httpx", "httpcore")) -> None:
    """The process's one log handler (stderr): ``fmt`` lines, redacted, at ``level`` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
