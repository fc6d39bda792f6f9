"""Writing an invocation's answer to the client (``gateway.edge.exchange``), driven by callbacks.

One state machine serves pexec, status polls and direct invocation: wait (up to the poll window)
for the worker's answer; stream it as it arrives; or, in polling mode, answer 202 with the
request id (and the latest progress) and leave the invocation running for a later poll.

Nothing waits in a task: ``Answering`` listens to the invocation's changes (``on_change``), the
poll window is a loop timer, and a streamed answer follows the client's socket (``backlog`` /
``on_writable``): chunks stay with the invocation while the client is slow, and a client that
falls more than its backlog limit (``STREAM_BACKLOG_BYTES`` by default) behind is cut off
rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.edge.exchange import Exchange, Headers
from gateway.invocation.answer_check import AnswerFault, answer_fault
from gateway.invocation.headers import relayed_answer_headers
from gateway.problems import GatewayError, error_body, problem_headers
from gateway.tracebacks import log_failure
from invoker.invocations import Invocation, ResultKind
from invoker.lifecycle import State
from invoker.logs import invocation_fields

log = logging.getLogger("gateway.invocation.answer")
# A malformed answer is logged once per function version and fault kind in this window.
MALFORMED_LOG_SECONDS = 60.0
_malformed_logged: dict[tuple[str, AnswerFault], float] = {}

# Large results (302) are stored by this callable, which returns the download URL.
StoreResult = Callable[[Invocation, bytes], Awaitable[str]]

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"})
_NOT_RELAYED = HOP_BY_HOP | {"nvcf-status"}

# A streamed answer is written while the client's socket keeps up; past this many bytes waiting
# for the client (in the socket buffer plus held chunks) the client is too slow and is dropped.
STREAM_BACKLOG_BYTES = 8 << 20
# Chunks are handed to the socket only while its backlog is under this mark.
STREAM_WRITE_MARK = 256 << 10


def nvcf_status(status: int) -> bytes:
    if status == 202:
        return b"in-progress"
    return b"errored" if status >= 400 else b"fulfilled"


def _reply_headers(request_id: str, status: int) -> Headers:
    return [
        (b"nvcf-reqid", request_id.encode()),
        (b"nvcf-status", nvcf_status(status)),
        (b"access-control-expose-headers", b"nvcf-reqid, nvcf-status, nvcf-percent-complete"),
    ]


def send_problem(exchange: Exchange, request_id: str, exc: GatewayError, instance: str) -> None:
    body = error_body(exc, instance)
    exchange.respond(exc.status, problem_headers(body, exc.headers) + _reply_headers(request_id, exc.status), body)


def send_accepted(exchange: Exchange, invocation: Invocation) -> None:
    """202 in-progress; with the latest progress (percent header, partialResponse body) if any."""
    headers = _reply_headers(invocation.request_id, 202)
    body = b""
    if invocation.percent is not None:
        headers.append((b"nvcf-percent-complete", str(invocation.percent).encode()))
        if invocation.partial:
            body = invocation.partial
            headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    exchange.respond(202, headers, body)


class Outcome:
    """How the answer ended, for the caller's bookkeeping."""

    DELIVERED = "delivered"  # the final answer went to this client
    ACCEPTED = "accepted"  # 202: the invocation goes on, poll for it
    TIMED_OUT = "timed-out"  # no answer within the window (direct invocation: 504)
    GONE = "gone"  # the client left (or was too slow) before the answer was complete
    REJECTED = "rejected"  # the worker's answer could not be relayed: 502 sent, cancel the rest


_RECOUNT_FIRST = 1

# Large results being stored (a task each: the file write runs on a thread).
_storing: set[asyncio.Future[None]] = set()

# Answers 202 for the answer loop; the service's publishing variant makes it known in Redis first.
Accept = Callable[[Exchange, Invocation], None]


class Answering:
    """Serve one invocation's answer to one client; ``done(outcome)`` runs once at the end."""

    __slots__ = (
        "_accept",
        "_backlog_limit",
        "_deadline",
        "_done",
        "_finished",
        "_listening",
        "_recount_at",
        "_store_result",
        "_streaming",
        "_timer",
        "exchange",
        "instance",
        "invocation",
        "polling",
        "seen_progress",
    )

    def __init__(
        self,
        invocation: Invocation,
        exchange: Exchange,
        instance: str,
        window: float,
        *,
        polling: bool,
        store_result: StoreResult,
        done: Callable[[str], None],
        seen_progress: int = 0,
        accept: Accept = send_accepted,
        backlog_limit: int = STREAM_BACKLOG_BYTES,
    ) -> None:
        self.invocation = invocation
        self._backlog_limit = backlog_limit
        self.exchange = exchange
        self.instance = instance
        self.polling = polling
        self.seen_progress = seen_progress
        self._store_result = store_result
        self._done = done
        self._accept = accept
        self._deadline = time.monotonic() + window
        self._timer: asyncio.TimerHandle | None = None
        self._finished = False
        self._listening = False
        self._streaming = False
        self._recount_at = _RECOUNT_FIRST

    def begin(self) -> None:
        self.exchange.on_close(self._client_gone)
        self._step()

    def _step(self) -> None:
        self._listening = False
        if self._finished:
            return
        if self._streaming:
            self._relay()
            return
        invocation = self.invocation
        if invocation.answer is not None:
            if invocation.answer.kind == ResultKind.LARGE_RESULT:
                if invocation.final:
                    self._stop_timer()
                    self._listening = True  # nothing more to listen to: the store task finishes
                    task = asyncio.ensure_future(self._send_large())
                    _storing.add(task)
                    task.add_done_callback(_storing.discard)
                    return
            else:
                self._stop_timer()
                _stream(self)
                return
        elif invocation.final:
            send_problem(self.exchange, invocation.request_id, _failure(invocation), self.instance)
            invocation.delivered = True
            self._finish(Outcome.DELIVERED)
            return
        elif self.polling and invocation.progress_seq > self.seen_progress:
            self._accept(self.exchange, invocation)
            self._finish(Outcome.ACCEPTED)
            return
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._window_over()
            return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(remaining, self._window_over)
        self._listen()

    def _listen(self) -> None:
        if not self._listening:
            self._listening = True
            self.invocation.on_change(self._step)

    def _window_over(self) -> None:
        self._timer = None
        if self._finished or self._streaming:
            return
        invocation = self.invocation
        if invocation.final or (invocation.answer is not None and invocation.answer.kind != ResultKind.LARGE_RESULT):
            self._step()
            return
        self.invocation.drop_listener(self._step)
        self._listening = False
        if self.polling:
            self._accept(self.exchange, invocation)
            self._finish(Outcome.ACCEPTED)
        else:
            self._finish(Outcome.TIMED_OUT)

    def _relay(self) -> None:
        """Hand held chunks to the client while it keeps up; end once the answer is final."""
        invocation = self.invocation
        exchange = self.exchange
        if exchange.closed:
            return
        chunks = invocation.chunks
        if chunks and exchange.backlog < STREAM_WRITE_MARK:
            self._recount_at = _RECOUNT_FIRST
            while chunks and exchange.backlog < STREAM_WRITE_MARK:
                exchange.write(chunks.popleft())
        if invocation.final and not chunks:
            exchange.end()
            self._finish(Outcome.DELIVERED)
            return
        if chunks:
            # Held bytes are counted when the held chunks have doubled: linear, not per chunk.
            held = 0
            if len(chunks) >= self._recount_at:
                self._recount_at = 2 * len(chunks)
                held = exchange.backlog + sum(len(c) for c in chunks)
            if held > self._backlog_limit:
                log.info(
                    "client of %s too slow: %d bytes behind, dropped",
                    invocation.request_id,
                    held,
                    extra=invocation_fields(invocation.request),
                )
                self._client_gone()
                exchange.abort()
                return
            exchange.on_writable(self._relay)
        self._listen()

    async def _send_large(self) -> None:
        try:
            outcome = await _send_large(self.invocation, self.exchange, self.instance, self._store_result)
        except GatewayError as error:
            # A failure the store reports as a problem of its own (object store unavailable: 503).
            outcome = self._large_failed(error)
        except Exception as exc:
            log_failure(log, "large result not stored", exc, extra=invocation_fields(self.invocation.request))
            outcome = self._large_failed(GatewayError("The large result could not be stored"))
        self._finish(outcome)

    def _large_failed(self, error: GatewayError) -> str:
        send_problem(self.exchange, self.invocation.request_id, error, self.instance)
        self.invocation.delivered = True
        return Outcome.DELIVERED

    def _client_gone(self) -> None:
        if self._finished:
            return
        self.invocation.drop_listener(self._step)
        self._finish(Outcome.GONE)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, outcome: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._stop_timer()
        self.exchange.on_close(None)
        self._done(outcome)


async def answer(
    invocation: Invocation,
    exchange: Exchange,
    instance: str,
    window: float,
    *,
    polling: bool,
    store_result: StoreResult,
    seen_progress: int = 0,
) -> str:
    """Serve the invocation's answer to this client and wait for the outcome."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def done(outcome: str) -> None:
        if not future.done():
            future.set_result(outcome)

    Answering(
        invocation,
        exchange,
        instance,
        window,
        polling=polling,
        store_result=store_result,
        done=done,
        seen_progress=seen_progress,
    ).begin()
    return await future


def _failure(invocation: Invocation) -> GatewayError:
    error = GatewayError(invocation.error or "invocation failed")
    if invocation.state == State.CANCELLED:
        error.status, error.name = 503, "service-unavailable"
    elif "queue lifetime" in (invocation.error or ""):
        error.status, error.name = 504, "gateway-timeout"
    else:
        error.status, error.name = 502, "bad-gateway"
    return error


def _reject(invocation: Invocation, exchange: Exchange, instance: str, fault: AnswerFault) -> str:
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
            extra=invocation_fields(invocation.request),
        )
    error = GatewayError(f"The function's worker sent an answer that cannot be relayed ({fault})")
    error.status, error.name = 502, "bad-gateway"
    invocation.chunks.clear()
    send_problem(exchange, invocation.request_id, error, instance)
    invocation.delivered = True
    return Outcome.REJECTED


def _stream(answering: Answering) -> None:
    """Start relaying the worker's answer: whole when it is all here, else chunk by chunk."""
    invocation = answering.invocation
    exchange = answering.exchange
    assert invocation.answer is not None
    status = invocation.answer.status
    fault = answer_fault(status, invocation.answer.headers)
    if fault is not None:
        answering._finish(_reject(invocation, exchange, answering.instance, fault))
        return
    relayed = (h for h in invocation.answer.headers if not h[0].lower().startswith("nvcf-reqid"))
    headers = relayed_answer_headers(relayed, _NOT_RELAYED)
    headers += _reply_headers(invocation.request_id, status)
    invocation.delivered = True
    if invocation.state == State.FULFILLED and invocation.request.method != "HEAD":
        # The whole answer is here already (the common small answer: start, chunk and end in one
        # worker message): one write with its length instead of a chunked body and a terminator.
        body = b"".join(invocation.drain_chunks())
        headers.append((b"content-length", str(len(body)).encode()))
        exchange.respond(status, headers, body)
        answering._finish(Outcome.DELIVERED)
        return
    # A failure after the status went out cannot become a problem response: the body just ends.
    exchange.start(status, headers)
    answering._streaming = True
    answering._relay()


async def _send_large(invocation: Invocation, exchange: Exchange, instance: str, store_result: StoreResult) -> str:
    if invocation.state != State.FULFILLED:
        send_problem(exchange, invocation.request_id, _failure(invocation), instance)
        invocation.delivered = True
        return Outcome.DELIVERED
    location = await store_result(invocation, b"".join(invocation.drain_chunks()))
    if exchange.closed:
        return Outcome.GONE
    headers = _reply_headers(invocation.request_id, 302) + [(b"location", location.encode()), (b"content-length", b"0")]
    exchange.respond(302, headers, b"")
    invocation.delivered = True
    return Outcome.DELIVERED
