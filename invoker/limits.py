"""Sizes the gateway and the worker must agree on.

The worker agent refuses a gRPC message over ``WORKER_MESSAGE_BYTES``; an invocation travels as
one message, so its body plus everything else in it (path, headers, ids, asset references) must
fit. The gateway refuses bodies over ``MAX_INVOCATION_BODY_BYTES`` up front (413 from the declared
length, before reading), which leaves ``INVOCATION_ENVELOPE_BYTES`` for the rest, and checks the
whole invocation with ``invocation_message_bytes`` before queueing it.
"""

from __future__ import annotations

from collections.abc import Sequence

WORKER_MESSAGE_BYTES = 64 << 20
INVOCATION_ENVELOPE_BYTES = 256 << 10
MAX_INVOCATION_BODY_BYTES = WORKER_MESSAGE_BYTES - INVOCATION_ENVELOPE_BYTES

# Per field and per message: protobuf tags and length varints, the ids, deadline, attempt.
_FIELD_OVERHEAD = 12
_FIXED_OVERHEAD = 1024


def invocation_message_bytes(
    body: int, path: str, headers: Sequence[tuple[str, str]], assets: Sequence[tuple[str, str, str]]
) -> int:
    """An upper bound of the invocation's size on the worker stream."""
    size = _FIXED_OVERHEAD + body + len(path)
    for key, value in headers:
        size += len(key) + len(value) + 2 * _FIELD_OVERHEAD
    for item in assets:
        size += sum(len(part) + _FIELD_OVERHEAD for part in item)
    return size
