"""Is a worker's answer something the gateway can relay? Status and headers, checked before sending.

A worker (or the container behind it) can send anything in ``ResponseStart``: a status outside
HTTP's range, a header name that is not a token, a value with CR/LF (response splitting) or with
characters no HTTP header can carry. Relayed as they are, these broke the client's connection
(the server layer refused them mid-response) or raised on encoding (a 500). Checked first, they
become a 502 problem for the client instead (``gateway/invocation/answer.py``).

Values may hold obs-text (0x80-0xff): the worker agent reads container headers as latin-1, so
such bytes are relayed exactly as the container sent them. Characters above 0xff cannot have
come from an HTTP header and are refused.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable

__all__ = ["AnswerFault", "answer_fault"]

# RFC 9110 §5.1 token; §5.5 field-value: HTAB, SP, VCHAR, obs-text (no CR, LF, NUL, other CTLs, DEL).
_is_token = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_is_field_value = re.compile(r"[\t\x20-\x7e\x80-\xff]*").fullmatch
# Names already seen valid (answers repeat the same few): a set lookup instead of the pattern.
_MAX_VALID_NAMES = 1024
_valid_names: set[str] = set()
# A final answer: 1xx are interim responses, and nothing outside 200..599 is an HTTP status.
MIN_STATUS, MAX_STATUS = 200, 599


class AnswerFault(enum.StrEnum):
    """Why an answer cannot be relayed (a kind, for logs and the problem's detail)."""

    STATUS = "invalid-status"
    HEADER_NAME = "invalid-header-name"
    HEADER_VALUE = "invalid-header-value"


def answer_fault(status: int, headers: Iterable[tuple[str, str]]) -> AnswerFault | None:
    """None when the status and every header can be sent to the client as they are."""
    if not MIN_STATUS <= status <= MAX_STATUS:
        return AnswerFault.STATUS
    for name, value in headers:
        if name not in _valid_names:
            if not _is_token(name):
                return AnswerFault.HEADER_NAME
            if len(_valid_names) < _MAX_VALID_NAMES:
                _valid_names.add(name)
        # Printable ASCII (the usual value) is checked in C; tabs and obs-text by the pattern.
        if not (value.isascii() and value.isprintable()) and not _is_field_value(value):
            return AnswerFault.HEADER_VALUE
    return None
