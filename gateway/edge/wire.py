"""HTTP/1.1 on the wire: response heads, chunk framing, and the edge's own problem answers."""

from __future__ import annotations

import logging
from http import HTTPStatus

from gateway.edge.exchange import Headers
from gateway.problems import problem_body, problem_headers

log = logging.getLogger("gateway.edge")

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else f"HTTP/1.1 {status} \r\n".encode()


def response_head(
    status: int, headers: Headers, defaults: Headers, *, keep_alive: bool, head_request: bool
) -> tuple[bytes, bool]:
    """The response's head and whether its body goes chunked (no content-length given)."""
    head, chunked, lines = _head(status, headers, defaults, keep_alive, head_request)
    if head.count(b"\n") != lines or head.count(b"\r") != lines:  # a CR or LF inside a header
        head, chunked, _ = _head(status, _valid(headers), defaults, keep_alive, head_request)
    return head, chunked


def _head(
    status: int, headers: Headers, defaults: Headers, keep_alive: bool, head_request: bool
) -> tuple[bytes, bool, int]:
    """(head, chunked, the number of lines it must have)."""
    parts = [status_line(status)]
    sized = False
    lines = 2 + len(defaults)  # the status line, the defaults, the empty line
    for name, value in headers:
        if name == b"content-length":
            sized = True
        elif name == b"connection" or name == b"transfer-encoding":
            continue  # this layer frames the message
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    for name, value in defaults:
        parts += (name, b": ", value, b"\r\n")
    chunked = not sized and not head_request and status not in _NO_BODY_STATUSES
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
        lines += 1
    if not keep_alive:
        parts.append(b"connection: close\r\n")
        lines += 1
    parts.append(b"\r\n")
    return b"".join(parts), chunked, lines


def _valid(headers: Headers) -> Headers:
    """The headers that cannot split the response (no CR/LF anywhere, no colon in a name)."""
    valid = []
    for name, value in headers:
        if b"\n" in value or b"\r" in value or b"\n" in name or b"\r" in name or b":" in name:
            log.warning("response header %r dropped: not a valid HTTP header", name[:64])
        else:
            valid.append((name, value))
    return valid


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def edge_problem(status: int, detail: str, instance: str = "/", extra: dict[str, str] | None = None) -> bytes:
    """A whole problem+json response from the edge itself (the connection closes after it)."""
    body = problem_body(status, detail, instance)
    headers = problem_headers(body, extra)
    head, _ = response_head(status, headers, [], keep_alive=False, head_request=False)
    return head + body
