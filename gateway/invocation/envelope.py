"""The ``exec`` envelope: ``POST /v2/nvcf/exec/functions/{fid}[/versions/{vid}]`` and
``GET /v2/nvcf/exec/status/{reqId}`` as NVCF's invocation service has them (reference §6.8).

The request ``{"requestHeader": {"inputAssetReferences": [...], "pollDurationSeconds": N},
"requestBody": <JSON>}`` becomes a pexec call: its body is ``requestBody`` serialised, with
``Content-Type: application/json``, ``NVCF-POLL-SECONDS`` from ``pollDurationSeconds`` and
``NVCF-INPUT-ASSET-REFERENCES`` from ``inputAssetReferences``. As in NVCF no other client header
reaches the container (so there is no SSE through exec). The pexec machinery answers into an
``EnvelopeExchange``, which turns its response into ``{"reqId", "status", "responseReference"?,
"percentComplete"?, "errorCode"?, "response"?}`` with the pexec status code (302 becomes 200).

Errors raised before an invocation exists (authentication, unknown function, rate limit, a bad
envelope) are problem+json, as pexec's, since NVCF propagates them unwrapped. Our choices where
NVCF is silent or unconfirmed (README, "exec envelope"):

* a status poll honours the client's ``NVCF-POLL-SECONDS`` (NVCF's ignores it: its default window);
* a 202 carries ``percentComplete`` when the worker reported progress (NVCF: only 100 on success);
* a 200 whose body is not JSON cannot be carried: 502 problem (NVCF answers 500);
* any other 2xx/3xx but 202 is ``fulfilled`` too (NVCF: only 200 and 302; a 201 or 204 from the
  container would be ``errored``), with ``response`` when it has a body;
* the envelope body is bounded by the pexec body limit (NVCF: axum's 2 MB default).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from gateway.edge.exchange import Exchange, Headers, HotRequest
from gateway.invocation.answer import STREAM_BACKLOG_BYTES
from gateway.problems import BadRequest, GatewayError, PayloadTooLarge, error_body, problem_headers

JSON = b"application/json"


def parse_envelope(raw: bytes) -> tuple[bytes, Headers]:
    """The pexec body and the headers the envelope stands for; ``BadRequest`` if it is not one."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Malformed JSON request body") from None
    if not isinstance(document, dict):
        raise BadRequest("The exec request must be a JSON object")
    if "requestBody" not in document:
        raise BadRequest("missing field `requestBody`")
    headers: Headers = [(b"content-type", JSON)]
    header = document.get("requestHeader")
    if header is not None and not isinstance(header, dict):
        raise BadRequest("requestHeader must be an object")
    header = header or {}
    seconds = header.get("pollDurationSeconds")
    if seconds is not None:
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
            raise BadRequest("requestHeader.pollDurationSeconds must be a whole number of seconds")
        headers.append((b"nvcf-poll-seconds", str(seconds).encode()))
    assets = header.get("inputAssetReferences")
    if assets is not None:
        if not isinstance(assets, list) or not all(isinstance(a, str) and _is_uuid(a) for a in assets):
            raise BadRequest("requestHeader.inputAssetReferences must be a list of asset ids (UUIDs)")
        if assets:
            headers.append((b"nvcf-input-asset-references", ",".join(a.lower() for a in assets).encode()))
    return orjson.dumps(document["requestBody"]), headers


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def inner_request(outer: HotRequest, headers: Headers) -> HotRequest:
    """The pexec (or status) request the envelope stands for, on the same path."""
    return HotRequest(outer.method, outer.path, outer.raw_path, b"", headers, outer.scheme)


class EnvelopeExchange(Exchange):
    """Collects the pexec machinery's response and answers the client with the envelope."""

    __slots__ = ("_body", "_chunks", "_done", "_headers", "_size", "_started", "_status", "outer", "request")

    def __init__(self, outer: Exchange, request: HotRequest, body: bytes = b"") -> None:
        self.outer = outer
        self.request = request
        self._body = body
        self._status = 0
        self._headers: Headers = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._started = False
        self._done = False

    async def body(self, limit: int) -> bytes:
        if len(self._body) > limit:  # re-serialised, ``requestBody`` may be a little longer than read
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes")
        return self._body

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        self._started = True
        self._answer(status, headers, body)

    def start(self, status: int, headers: Headers) -> None:
        self._started = True
        self._status, self._headers = status, headers

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > STREAM_BACKLOG_BYTES:  # past the direct-answer size: not an envelope's
            self.abort()
            return
        self._chunks.append(data)

    def end(self) -> None:
        self._answer(self._status, self._headers, b"".join(self._chunks))

    def abort(self) -> None:
        self._done = True
        self.outer.abort()

    @property
    def started(self) -> bool:
        return self._started or self.outer.started

    @property
    def closed(self) -> bool:
        return self._done or self.outer.closed

    @property
    def backlog(self) -> int:
        return 0  # everything is collected here; the client gets one write

    def on_close(self, callback: Callable[[], None] | None) -> None:
        self.outer.on_close(callback)

    def on_writable(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)

    def _answer(self, status: int, headers: Headers, body: bytes) -> None:
        if self._done or self.outer.closed:
            return
        self._done = True
        found = dict(headers)
        request_id = (found.get(b"nvcf-reqid") or b"").decode("latin-1")
        try:
            document = envelope(request_id, status, found, body)
        except GatewayError as exc:
            problem = error_body(exc, self.request.path)
            reply = problem_headers(problem) + _id_headers(request_id, exc.status)
            self.outer.respond(exc.status, reply, problem)
            return
        payload = orjson.dumps(document)
        code = 200 if status == 302 else status
        reply = [(b"content-type", JSON), (b"content-length", str(len(payload)).encode())]
        self.outer.respond(code, reply + _id_headers(request_id, code), payload)


def envelope(request_id: str, status: int, headers: dict[bytes, bytes], body: bytes) -> dict[str, Any]:
    """NVCF's ``InvokeFunctionResponse`` for a pexec answer (``post_exec.rs``)."""
    document: dict[str, Any] = {"reqId": request_id}
    if status == 202:
        document["status"] = "in-progress"
        percent = headers.get(b"nvcf-percent-complete")
        if percent is not None and percent.isdigit():
            document["percentComplete"] = int(percent)
    elif status < 400:
        document["status"] = "fulfilled"
        document["percentComplete"] = 100
        if status == 302:
            document["responseReference"] = (headers.get(b"location") or b"").decode("latin-1")
        elif body:
            try:
                document["response"] = orjson.loads(body)
            except orjson.JSONDecodeError:
                error = GatewayError("The function's answer is not JSON, which the exec envelope carries only")
                error.status, error.name = 502, "bad-gateway"
                raise error from None
    else:
        document["status"] = "errored"
        document["errorCode"] = status
    return document


def _id_headers(request_id: str, status: int) -> Headers:
    state = b"in-progress" if status == 202 else b"errored" if status >= 400 else b"fulfilled"
    return [(b"nvcf-reqid", request_id.encode()), (b"nvcf-status", state)]
