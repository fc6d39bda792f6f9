"""The one exception root of the object-store boundary; what went wrong is a kind, not a text."""

from __future__ import annotations

import enum


class StoreFailure(enum.Enum):
    # Not reachable, timed out or answered 5xx: retry later (503 to clients).
    UNAVAILABLE = "unavailable"
    # Answered 4xx to a well-formed request: credentials, bucket or policy are wrong (502).
    REFUSED = "refused"


class ObjectStoreError(Exception):
    def __init__(self, kind: StoreFailure, detail: str) -> None:
        super().__init__(f"object store {kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
