"""How a queue payload becomes bytes when the queue lives outside the process (Redis).

The memory queue keeps payloads as objects; the Redis queue stores whatever its codec makes of
them, since another process may take the entry. The invocation layer supplies a codec for its
``InvocationRequest`` (``invoker.wire``); ``JsonCodec`` covers JSON-shaped payloads (tests, tools).
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson


class PayloadCodec(Protocol):
    def encode(self, payload: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class JsonCodec:
    def encode(self, payload: Any) -> bytes:
        return orjson.dumps(payload)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)
