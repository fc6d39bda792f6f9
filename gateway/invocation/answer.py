"""Writing an invocation's answer to the client over raw ASGI.

One loop serves pexec, status polls and direct invocation: wait (up to the poll window) for the
worker's answer; stream it as it arrives; or, in polling mode, answer 202 with the request id
(and the latest progress) and leave the invocation running for a later poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from gateway.asgi import Send
from gateway.invocation.answer_check import AnswerFault, answer_fault
from gateway.invocation.headers import relayed_answer_headers
from gateway.problems import GatewayError, error_body, problem_headers
from invoker.invocations import Invocation, ResultKind
from invoker.lifecycle import State

log = logging.getLogger("gateway.invocation.answer")
# A malformed answer is logged once per function version and fault kind in this window.
MALFORMED_LOG_SECONDS = 60.0
_malformed_logged: dict[tuple[str, AnswerFault], float] = {}

# Large results (302) are stored by this callable, which returns the download URL.
StoreResult = Callable[[Invocation, bytes], Awaitable[str]]

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"})
_NOT_RELAYED = HOP_BY_HOP | {"nvcf-status"}


def nvcf_status(status: int) -> bytes:
    if status == 202:
        return b"in-progress"
    return b"errored" if status >= 400 else b"fulfilled"


def _reply_headers(request_id: str, status: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"nvcf-reqid", request_id.encode()),
        (b"nvcf-status", nvcf_status(status)),
        (b"access-control-expose-headers", b"nvcf-reqid, nvcf-status, nvcf-percent-complete"),
    ]


async def send_problem(send: Send, request_id: str, exc: GatewayError, instance: str) -> None:
    body = error_body(exc, instance)
    headers = problem_headers(body, exc.headers) + _reply_headers(request_id, exc.status)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_accepted(send: Send, invocation: Invocation) -> None:
    """202 in-progress; with the latest progress (percent header, partialResponse body) if any."""
    headers = _reply_headers(invocation.request_id, 202)
    body = b""
    if invocation.percent is not None:
        headers.append((b"nvcf-percent-complete", str(invocation.percent).encode()))
        if invocation.partial:
            body = invocation.partial
            headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Outcome:
    """How the answer loop ended, for the caller's bookkeeping."""

    DELIVERED = "delivered"  # the final answer went to this client
    ACCEPTED = "accepted"  # 202: the invocation goes on, poll for it
    TIMED_OUT = "timed-out"  # no answer within the window (direct invocation: 504)
    REJECTED = "rejected"  # the worker's answer could not be relayed: 502 sent, cancel the rest


async def answer(
    invocation: Invocation,
    send: Send,
    instance: str,
    window: float,
    *,
    polling: bool,
    store_result: StoreResult,
    seen_progress: int = 0,
) -> str:
    """Serve the invocation's answer to this client. ``polling``: may answer 202 instead of waiting."""
    deadline = time.monotonic() + window
    while True:
        if invocation.answer is not None:
            if invocation.answer.kind == ResultKind.LARGE_RESULT:
                if invocation.final:
                    return await _send_large(invocation, send, instance, store_result)
            else:
                return await _stream(invocation, send, instance)
        elif invocation.final:
            await send_problem(send, invocation.request_id, _failure(invocation), instance)
            invocation.delivered = True
            return Outcome.DELIVERED
        elif polling and invocation.progress_seq > seen_progress:
            await send_accepted(send, invocation)
            return Outcome.ACCEPTED
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not await invocation.changed(remaining):
            if invocation.answer is not None or invocation.final:
                continue
            if polling:
                await send_accepted(send, invocation)
                return Outcome.ACCEPTED
            return Outcome.TIMED_OUT


def _failure(invocation: Invocation) -> GatewayError:
    error = GatewayError(invocation.error or "invocation failed")
    if invocation.state == State.CANCELLED:
        error.status, error.name = 503, "service-unavailable"
    elif "queue lifetime" in (invocation.error or ""):
        error.status, error.name = 504, "gateway-timeout"
    else:
        error.status, error.name = 502, "bad-gateway"
    return error


async def _reject(invocation: Invocation, send: Send, instance: str, fault: AnswerFault) -> str:
    """502 instead of a malformed answer. The worker's session is kept: one bad answer (usually
    the container's) says nothing about its other invocations; the caller cancels this one."""
    key = (invocation.request.version_id, fault)
    now = time.monotonic()
    if now - _malformed_logged.get(key, -MALFORMED_LOG_SECONDS) >= MALFORMED_LOG_SECONDS:
        if len(_malformed_logged) > 1024:
            _malformed_logged.clear()
        _malformed_logged[key] = now
        log.warning(
            "function %s version %s: worker answer not relayed (%s); 502 to the client (logged once a minute)",
            invocation.request.function_id,
            invocation.request.version_id,
            fault,
        )
    error = GatewayError(f"The function's worker sent an answer that cannot be relayed ({fault})")
    error.status, error.name = 502, "bad-gateway"
    invocation.chunks.clear()
    await send_problem(send, invocation.request_id, error, instance)
    invocation.delivered = True
    return Outcome.REJECTED


async def _stream(invocation: Invocation, send: Send, instance: str) -> str:
    assert invocation.answer is not None
    status = invocation.answer.status
    fault = answer_fault(status, invocation.answer.headers)
    if fault is not None:
        return await _reject(invocation, send, instance, fault)
    relayed = (h for h in invocation.answer.headers if not h[0].lower().startswith("nvcf-reqid"))
    headers = relayed_answer_headers(relayed, _NOT_RELAYED)
    headers += _reply_headers(invocation.request_id, status)
    if invocation.state == State.FULFILLED and invocation.request.method != "HEAD":
        # The whole answer is here already (the common small answer: start, chunk and end in one
        # worker message): one send with its length instead of a chunked body and a terminator.
        body = b"".join(invocation.drain_chunks())
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        invocation.delivered = True
        await send({"type": "http.response.body", "body": body})
        return Outcome.DELIVERED
    await send({"type": "http.response.start", "status": status, "headers": headers})
    invocation.delivered = True
    while True:
        for chunk in invocation.drain_chunks():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if invocation.final and not invocation.chunks:
            break
        await invocation.changed(None)
    # A failure after the status went out cannot become a problem response: end the body.
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return Outcome.DELIVERED


async def _send_large(invocation: Invocation, send: Send, instance: str, store_result: StoreResult) -> str:
    if invocation.state != State.FULFILLED:
        await send_problem(send, invocation.request_id, _failure(invocation), instance)
        invocation.delivered = True
        return Outcome.DELIVERED
    location = await store_result(invocation, b"".join(invocation.drain_chunks()))
    headers = _reply_headers(invocation.request_id, 302) + [(b"location", location.encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    invocation.delivered = True
    return Outcome.DELIVERED
