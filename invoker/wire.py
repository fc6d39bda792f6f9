"""``InvocationRequest`` as bytes, for the Redis queue (another process may take it).

A 4-byte length, the fields as an orjson array, then the body as raw bytes: no base64, no copy
of the body through JSON.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

from invoker.invocations import InvocationRequest

_LENGTH = struct.Struct(">I")


class RequestCodec:
    def encode(self, payload: Any) -> bytes:
        r: InvocationRequest = payload
        meta = orjson.dumps(
            [
                r.request_id,
                r.function_id,
                r.version_id,
                r.method,
                r.path,
                r.headers,
                r.compat,
                r.deadline_ms,
                r.subject,
                r.nca_id,
                r.poll_seconds,
                r.enqueued_at_ms,
                r.assets,
                r.origin,
            ]
        )
        return _LENGTH.pack(len(meta)) + meta + r.body

    def decode(self, data: bytes) -> InvocationRequest:
        (size,) = _LENGTH.unpack_from(data)
        fields = orjson.loads(data[4 : 4 + size])
        (rid, fid, vid, method, path, headers, compat, deadline, subject, nca, poll, enqueued, assets, origin) = fields
        return InvocationRequest(
            request_id=rid,
            function_id=fid,
            version_id=vid,
            method=method,
            path=path,
            headers=[(k, v) for k, v in headers],
            body=data[4 + size :],
            compat=compat,
            deadline_ms=deadline,
            subject=subject,
            nca_id=nca,
            poll_seconds=poll,
            enqueued_at_ms=enqueued,
            assets=[(a, u, c) for a, u, c in assets],
            origin=origin,
        )
