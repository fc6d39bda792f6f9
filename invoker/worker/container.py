"""What the worker sends to the inference container and what it relays back: headers and problems.

Request headers (reference §9.2–9.3, ``WU/work.go::createInferenceRequest``):

- Dropped from the invocation's headers: ``Authorization``; hop-by-hop headers (``Connection``,
  ``Keep-Alive``, ``Proxy-Connection``, ``Proxy-Authenticate``, ``Proxy-Authorization``, ``TE``,
  ``Trailer``, ``Transfer-Encoding``, ``Upgrade``) and every name listed in ``Connection``;
  ``Host``, ``Content-Length`` and ``Expect`` (the worker frames the request itself); and client
  copies of every name the worker owns (``WORKER_OWNED``).
- Added: ``Host: <inference host:port>``; ``NVCF-REQID``, ``NVCF-SUB``, ``NVCF-NCAID`` (the
  invocation's, falling back to the function's account), ``NVCF-FUNCTION-NAME``,
  ``NVCF-FUNCTION-ID``, ``NVCF-FUNCTION-VERSION-ID``, ``NVCF-ASSET-DIR``,
  ``NVCF-MAX-RESPONSE-SIZE-BYTES`` (always); ``NVCF-LARGE-OUTPUT-DIR`` (unless the worker runs with
  ``--no-large-outputs``); ``NVCF-FUNCTION-ASSET-IDS`` (only with assets);
  ``NVCF-NSPECTID``, ``NVCF-BACKEND``, ``NVCF-INSTANCETYPE``, ``NVCF-REGION``, ``NVCF-ENV`` and
  ``NVCF-INVOCATION-REGION`` from ``RegisterResponse.metadata`` (only when non-empty; see
  ``metadata_value`` for the accepted key spellings; backend, instance type and region fall back to
  the worker's own ``--backend``/``--instance-type``/``--location``; the invocation region falls
  back to the gateway's ``region`` entry, one region per session); ``nvcf-poll-seconds`` (the
  invocation's ``poll_seconds``, else the whole seconds left until its deadline); in compat mode
  ``Content-Type: application/json`` when the client sent none; ``Content-Length`` when there is a
  body or the method carries one (POST, PUT, PATCH).

Response headers relayed to the gateway: the container's, minus hop-by-hop headers and the names
listed in its ``Connection`` header. ``Content-Length`` is kept only when the body is relayed
unchanged (the worker recomputes it for bodies it builds itself). Values are decoded as latin-1,
so encoding them back as latin-1 gives the container's bytes.

Worker-generated errors (reference §5, ``WU/response/error.go``) are
``application/problem+json`` with ``type: urn:<source>:problem-details:<kebab reason>``, ``title``
(the reason phrase, Go's wording), ``status`` and ``detail``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from http import HTTPStatus

from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = [
    "HOP_BY_HOP",
    "WORKER_OWNED",
    "container_headers",
    "error_detail",
    "metadata_value",
    "problem",
    "relay_headers",
    "static_headers",
]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

WORKER_OWNED = frozenset(
    {
        "nvcf-reqid",
        "nvcf-sub",
        "nvcf-ncaid",
        "nvcf-function-name",
        "nvcf-function-id",
        "nvcf-function-version-id",
        "nvcf-asset-dir",
        "nvcf-large-output-dir",
        "nvcf-max-response-size-bytes",
        "nvcf-function-asset-ids",
        "nvcf-nspectid",
        "nvcf-backend",
        "nvcf-instancetype",
        "nvcf-region",
        "nvcf-env",
        "nvcf-invocation-region",
        "nvcf-poll-seconds",
    }
)

_DROPPED_REQUEST = HOP_BY_HOP | WORKER_OWNED | {"authorization", "host", "content-length", "expect"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Go's http.StatusText wording where Python's differs (the problem `type` and `title` use it).
_GO_REASONS = {
    413: "Request Entity Too Large",
    414: "Request URI Too Long",
    416: "Requested Range Not Satisfiable",
    418: "I'm a teapot",
    422: "Unprocessable Entity",
}

SOURCE_WORKER = "nvcf-worker-service"
SOURCE_INFERENCE = "inference-service"
SOURCE_CONNECTION = "inference-connection"


def _normalise(key: str) -> str:
    key = key.lower()
    for prefix in ("nvcf-", "nvcf_"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return re.sub(r"[-_ ]", "", key)


def metadata_value(metadata: Mapping[str, str], header: str) -> str:
    """The metadata entry for ``NVCF-<NAME>``: keys match case-insensitively with or without the
    ``NVCF-`` prefix and ignoring ``-``/``_`` (``NVCF-INSTANCETYPE``, ``instance_type``, ``instanceType``)."""
    wanted = _normalise(header)
    for key, value in metadata.items():
        if _normalise(key) == wanted:
            return value
    return ""


def static_headers(
    register: pb.RegisterResponse, *, backend: str = "", instance_type: str = "", location: str = ""
) -> list[tuple[str, str]]:
    """The NVCF-* headers that are the same for every invocation of a session."""
    metadata = register.metadata
    headers = [
        ("NVCF-FUNCTION-NAME", register.function_name),
        ("NVCF-FUNCTION-ID", register.function_id),
        ("NVCF-FUNCTION-VERSION-ID", register.version_id),
        ("NVCF-MAX-RESPONSE-SIZE-BYTES", str(register.max_direct_response_bytes)),
    ]
    fallbacks = {"NVCF-BACKEND": backend, "NVCF-INSTANCETYPE": instance_type, "NVCF-REGION": location}
    for name in ("NVCF-NSPECTID", "NVCF-BACKEND", "NVCF-INSTANCETYPE", "NVCF-REGION", "NVCF-ENV"):
        value = metadata_value(metadata, name) or fallbacks.get(name, "")
        if value:
            headers.append((name, value))
    region = metadata_value(metadata, "NVCF-INVOCATION-REGION") or metadata_value(metadata, "NVCF-REGION")
    if region:
        headers.append(("NVCF-INVOCATION-REGION", region))
    return headers


def poll_seconds(invocation: pb.Invocation, now_ms: int | None = None) -> str | None:
    if invocation.poll_seconds:
        return str(invocation.poll_seconds)
    if invocation.deadline_ms:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return str(max(0, (invocation.deadline_ms - now) // 1000))
    return None


def container_headers(
    invocation: pb.Invocation,
    *,
    host: str,
    static: list[tuple[str, str]],
    nca_id: str,
    asset_dir: str,
    output_dir: str,
    body: bytes | None = None,
) -> list[tuple[str, str]]:
    """The header list for the container call of ``invocation`` (see the module docstring).

    ``output_dir`` "": the worker offers no large-output directory (``--no-large-outputs``), so
    ``NVCF-LARGE-OUTPUT-DIR`` is left out. ``body``: the invocation's body when the caller has
    already read it (each read of the protobuf field copies it).
    """
    if body is None:
        body = invocation.body
    headers: list[tuple[str, str]] = [("Host", host)]
    connection: list[str] = []
    for header in invocation.headers:
        key = header.key
        lowered = key.lower()
        if lowered in _DROPPED_REQUEST:
            if lowered == "connection":
                connection.append(header.value)
            continue
        headers.append((key, header.value))
    if connection:
        named = {token.strip().lower() for value in connection for token in value.split(",")}
        headers = [headers[0], *(pair for pair in headers[1:] if pair[0].lower() not in named)]
    needs_content_type = invocation.compat and not any(name.lower() == "content-type" for name, _ in headers)
    headers += (
        ("NVCF-REQID", invocation.request_id),
        ("NVCF-SUB", invocation.subject),
        ("NVCF-NCAID", invocation.nca_id or nca_id),
        ("NVCF-ASSET-DIR", asset_dir),
    )
    if output_dir:
        headers.append(("NVCF-LARGE-OUTPUT-DIR", output_dir))
    headers += static
    if invocation.assets:
        headers.append(("NVCF-FUNCTION-ASSET-IDS", ",".join(asset.asset_id for asset in invocation.assets)))
    seconds = poll_seconds(invocation)
    if seconds is not None:
        headers.append(("nvcf-poll-seconds", seconds))
    if needs_content_type:
        headers.append(("Content-Type", "application/json"))
    if body or (invocation.method or "POST").upper() in _BODY_METHODS:
        headers.append(("Content-Length", str(len(body))))
    return headers


_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)


def relay_headers(raw: Iterable[tuple[bytes, bytes]], *, keep_length: bool) -> list[tuple[str, str]]:
    """The container's response headers as (name, value) strings, minus hop-by-hop ones."""
    out: list[tuple[str, str]] = []
    connection: list[bytes] = []
    for name, value in raw:
        lowered = name.lower()
        if lowered in _HOP_BY_HOP_BYTES:
            if lowered == b"connection":
                connection.append(value)
            continue
        if lowered == b"content-length" and not keep_length:
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection:
        named = {token.strip().lower().decode("latin-1") for value in connection for token in value.split(b",")}
        out = [(name, value) for name, value in out if name.lower() not in named]
    return out


def reason(status: int) -> str:
    if status in _GO_REASONS:
        return _GO_REASONS[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


def problem(source: str, status: int, detail: str) -> bytes:
    """A worker-generated problem+json body."""
    title = reason(status)
    kebab = title.lower().replace(" ", "-")
    document = {"type": f"urn:{source}:problem-details:{kebab}", "title": title, "status": status, "detail": detail}
    return json.dumps(document, separators=(",", ":")).encode()


def error_detail(body: bytes) -> str:
    """The container's ``{"error": "..."}`` message (Triton style), else ``Inference error``."""
    try:
        document = json.loads(body)
    except ValueError:
        return "Inference error"
    if isinstance(document, dict):
        message = document.get("error")
        if isinstance(message, str) and message:
            return message
    return "Inference error"
