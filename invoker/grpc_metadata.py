"""gRPC metadata across the worker stream, whose headers are text.

Binary metadata (keys ending in ``-bin``, among them ``grpc-status-details-bin``, the rich error
details clients read with ``grpc_status``) travels base64-encoded, as gRPC itself carries it in
HTTP/2, and becomes bytes again at the far end: the container and the client see the bytes
unchanged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

BINARY_SUFFIX = "-bin"
Metadata = tuple[tuple[str, str | bytes], ...]


def to_headers(metadata: Iterable[tuple[str, str | bytes]] | None) -> list[tuple[str, str]]:
    """grpc metadata → text header pairs (``-bin`` values base64)."""
    pairs: list[tuple[str, str]] = []
    for key, value in metadata or ():
        if isinstance(value, bytes):
            if key.endswith(BINARY_SUFFIX):
                pairs.append((key, base64.b64encode(value).decode("ascii")))
        elif not key.endswith(BINARY_SUFFIX):
            pairs.append((key, value))
    return pairs


def from_headers(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str | bytes]]:
    """Text header pairs → grpc metadata (``-bin`` values decoded; undecodable ones dropped)."""
    metadata: list[tuple[str, str | bytes]] = []
    for key, value in pairs:
        if key.endswith(BINARY_SUFFIX):
            try:
                metadata.append((key, base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError):
                continue
        else:
            metadata.append((key, value))
    return metadata
