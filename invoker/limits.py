"""Sizes the gateway and the worker must agree on.

The worker agent refuses a gRPC message over ``WORKER_MESSAGE_BYTES``; an invocation travels as
one message, so its body plus everything else in it (path, headers, ids, asset references) must
fit. The gateway refuses bodies over ``MAX_INVOCATION_BODY_BYTES`` up front (413 from the declared
length, before reading), which leaves ``INVOCATION_ENVELOPE_BYTES`` for the rest, and checks the
whole invocation with ``invocation_message_bytes`` before queueing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoker.invocations import InvocationRequest

WORKER_MESSAGE_BYTES = 64 << 20
INVOCATION_ENVELOPE_BYTES = 256 << 10
MAX_INVOCATION_BODY_BYTES = WORKER_MESSAGE_BYTES - INVOCATION_ENVELOPE_BYTES

# Per field and per message: protobuf tags and length varints, the ids, deadline, attempt.
_FIELD_OVERHEAD = 12
_FIXED_OVERHEAD = 1024


def invocation_message_bytes(request: InvocationRequest) -> int:
    """An upper bound of the invocation's size on the worker stream (alone in its message)."""
    size = _FIXED_OVERHEAD + len(request.body) + len(request.path) + len(request.method)
    size += len(request.request_id) + len(request.subject) + len(request.nca_id)
    for key, value in request.headers:
        size += len(key) + len(value) + 2 * _FIELD_OVERHEAD
    for item in request.assets:
        size += sum(len(part) + _FIELD_OVERHEAD for part in item)
    return size
