"""Request headers on the way to a worker, the container's answer headers on the way back, and the
NVCF-POLL-SECONDS rule."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.problems import BadRequest

MAX_POLL_SECONDS = 3600
DEFAULT_POLL_SECONDS = 60
DEFAULT_SSE_POLL_SECONDS = 1200

# Never forwarded to the container: hop-by-hop (RFC 9110 §7.6.1), the caller's credential,
# routing headers of the gateway, and names the worker owns (it sets its own values).
DROPPED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
        b"authorization",
        b"host",
        b"content-length",
        b"function-id",
        b"function-version-id",
        b"nvcf-poll-seconds",
        b"nvcf-input-asset-references",
        b"nvcf-invocation-region",
    }
)


def forwarded_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Client headers the container may see (values kept byte-exact via latin-1)."""
    connection_named: set[bytes] = set()
    for key, value in raw:
        if key == b"connection":
            connection_named.update(v.strip().lower() for v in value.split(b","))
    return [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, value in raw
        if key not in DROPPED and key not in connection_named and not key.startswith(b"proxy-")
    ]


# The gateway's own answer headers: the container's copies would be a second Date (a stale one)
# and a Server naming the container's software.
GATEWAY_OWNED_ANSWER_HEADERS = frozenset({"date", "server"})


def relayed_answer_headers(headers: Iterable[tuple[str, str]], dropped: frozenset[str]) -> list[tuple[bytes, bytes]]:
    """The container's answer headers the client gets: all but ``dropped`` (lower-case names, e.g.
    hop-by-hop) and ``GATEWAY_OWNED_ANSWER_HEADERS``."""
    return [
        (key.lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in headers
        if (name := key.lower()) not in dropped and name not in GATEWAY_OWNED_ANSWER_HEADERS
    ]


def poll_seconds(raw: bytes | None, default: int) -> int:
    """1..3600; ``0`` is raised to 1 as self-hosted NVCF does; anything else is a 400."""
    if raw is None:
        return default
    text = raw.strip()
    # ASCII digits only: str.isdigit() also accepts "²", which int() then refuses (a 500).
    if not text.isdigit() or len(text) > 12:
        raise BadRequest("NVCF-POLL-SECONDS must be a whole number of seconds")
    value = int(text)
    if value > MAX_POLL_SECONDS:
        raise BadRequest(f"NVCF-POLL-SECONDS must be <= {MAX_POLL_SECONDS}")
    return max(1, value)
