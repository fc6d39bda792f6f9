"""Request ids are random version-4 UUIDs in canonical form (they are also NVCF-REQID values,
status-poll paths and Redis keys)."""

from __future__ import annotations

import uuid

from gateway.invocation.service import new_request_id


def test_request_ids_are_canonical_random_v4_uuids() -> None:
    seen = set()
    for _ in range(5000):
        text = new_request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # lower-case, dashed, 36 characters
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 5000
