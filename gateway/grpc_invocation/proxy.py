"""One gRPC invocation: metadata auth, the function, the queue, and the answer as gRPC frames.

Metadata as NVCF's gRPC proxy reads it: ``authorization: Bearer <API key or JWT>`` (needs
``invoke_function``; checked by the same authenticator and function rules as HTTP pexec),
``function-id``, optional ``function-version-id``, optional ``nvcf-reqid`` (resume a session,
``gateway.grpc_invocation.sessions``), optional ``nvcf-poll-seconds`` (how long the call may wait
for a worker to take it; default 60). The call is queued as an invocation like any HTTP one (same
queue bound, rate limit, credits, worker stream); its request messages travel in gRPC framing and
the container's messages come back unchanged.

The call is submitted when the client's first request message (or its half-close) arrives; when
the half-close is already there the invocation carries every message, otherwise it streams
(``GRPC_STREAMING``): further messages follow it to the worker as they arrive. A function whose
server speaks first in a bidi call, before any client message, is therefore not served.

Request bytes count against the process's byte budget like HTTP invocation bodies: the messages
queued with the call until it ends, streamed ones until the container has read them; a streaming
client is never more than ``REQUEST_WINDOW`` bytes ahead of the container (it waits, held back by
HTTP/2 flow control). Binary (``-bin``) metadata is relayed both ways, the container's
``grpc-status-details-bin`` (rich error details) included.

Errors as gRPC status: UNAUTHENTICATED (no or bad bearer), PERMISSION_DENIED (no
``invoke_function``, or a key without the function), NOT_FOUND (unknown function or version,
stale session), INVALID_ARGUMENT (bad metadata), RESOURCE_EXHAUSTED (queue bound, rate limit,
size, the byte budget, a client reading a stream more than ``stream_backlog`` bytes behind), UNAVAILABLE (no
worker took it within the poll window, worker lost, Redis away), DEADLINE_EXCEEDED (the
client's deadline passed at the worker); the container's own status is relayed as it is. A
client that cancels cancels the invocation and the container call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

import grpc
from redis.exceptions import RedisError

from cext.hotpath import Principal, extract_bearer
from gateway.auth.authenticator import Authenticator
from gateway.edge.budget import over_budget
from gateway.grpc_invocation.sessions import GrpcSessions
from gateway.invocation.headers import DEFAULT_POLL_SECONDS, poll_seconds
from gateway.invocation.service import InvocationService
from gateway.problems import GatewayError
from invoker.errors import BackendUnavailable, QueueFull
from invoker.grpc_frames import FrameError, FrameReader, frame
from invoker.grpc_metadata import from_headers, to_headers
from invoker.invocations import GRPC, GRPC_STREAMING, Invocation, InvocationRequest
from invoker.lifecycle import State

log = logging.getLogger("gateway.grpc")

# Metadata the proxy consumes or that belongs to the transport; the rest reaches the container.
_CONSUMED = frozenset(
    {
        "authorization",
        "function-id",
        "function-version-id",
        "nvcf-reqid",
        "nvcf-poll-seconds",
        "user-agent",
        "te",
        "content-type",
        "grpc-accept-encoding",
        "grpc-encoding",
        "grpc-timeout",
    }
)
# The half-close of a unary or server-streaming call arrives with its message: wait this long for
# it before streaming the rest (a unary call then travels as one invocation, messages included).
_HALF_CLOSE_WAIT = 0.002
_STATUS_BY_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Streamed request bytes of one call in flight to its container, not yet read by it.
REQUEST_WINDOW = 1 << 20
_BUDGET_RETRY_SECONDS = 0.05

Context = grpc.aio.ServicerContext[bytes, bytes]
Behavior = Callable[[AsyncIterator[bytes], Context], AsyncIterator[bytes]]


class GrpcRefused(Exception):
    """The call ends with this status before (or instead of) reaching a container."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _refusal(exc: GatewayError) -> GrpcRefused:
    return GrpcRefused(_STATUS_BY_HTTP.get(exc.status, grpc.StatusCode.INTERNAL), str(exc.detail))


class GrpcInvocations:
    def __init__(
        self, service: InvocationService, authenticator: Authenticator, invoke_mask: int, sessions: GrpcSessions
    ) -> None:
        self.service = service
        self.dispatcher = service.dispatcher
        self.authenticator = authenticator
        self.invoke_mask = invoke_mask
        self.sessions = sessions
        self._tasks: set[asyncio.Task[None]] = set()

    def handler(self, method: str) -> Behavior:
        async def behavior(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
            async for message in self.call(method, requests, context):
                yield message

        return behavior

    async def settle(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def call(self, method: str, requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[bytes]:
        received = context.invocation_metadata() or ()
        metadata = _text_metadata(received)
        session_id = ""
        more: _Rest | None = None
        budget = self.service.budget
        held = 0
        try:
            principal = await self._principal(metadata.get("authorization"))
            function_id = _uuid(metadata.get("function-id"), "function-id", required=True)
            assert function_id is not None
            version_id = _uuid(metadata.get("function-version-id"), "function-version-id", required=False)
            window = poll_seconds(_encoded(metadata.get("nvcf-poll-seconds")), DEFAULT_POLL_SECONDS)
            route, version = self.service.target(principal, function_id, version_id)
            session_id = await self._session(metadata.get("nvcf-reqid"), route.function_id, principal.nca_id)
            if version.rate_limit is not None:
                refusal = await self.service.over_rate(principal, route, version, version.rate_limit)
                if refusal is not None:
                    raise GrpcRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal[1])
            first, more = await _first_messages(requests)
            body = b"".join(frame(m) for m in first)
            if len(body) > self.service.max_body_bytes:
                raise GrpcRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, "the request messages are too large")
            headers = [(k, v) for k, v in to_headers(received) if k not in _CONSUMED and k[:1] != ":"]
            headers += [("nvcf-reqid", session_id), ("nvcf-function-id", route.function_id)]
            headers.append(("nvcf-function-version-id", version.version_id))
            # Held while this call lasts (the invocation is forgotten when it ends).
            if not budget.reserve(len(body)):
                raise _refusal(over_budget())
            held = len(body)
            invocation = await self._submit(
                principal, route.function_id, version.version_id, method, headers, body, more, window, context
            )
        except (GatewayError, GrpcRefused) as exc:
            budget.release(held)
            if more is not None:
                more.close()
            await _abort(context, _refusal(exc) if isinstance(exc, GatewayError) else exc, session_id)
            return
        except BaseException:
            budget.release(held)
            raise
        pump = None if more is None else asyncio.ensure_future(self._pump(invocation, more))
        try:
            async for message in self._answer(invocation, window, session_id, context):
                yield message
        finally:
            budget.release(held)
            if pump is not None and more is not None:
                pump.cancel()
                more.close()
            self.dispatcher.forget_grpc(invocation.request_id)
            if not invocation.final:
                # The client cancelled (or its deadline passed): stop it at the worker and container.
                self._spawn(self.dispatcher.cancel(invocation, "client cancelled the gRPC call"))
            self.service.table.forget(invocation.request_id)

    async def _principal(self, authorization: str | None) -> Principal:
        status, token = extract_bearer(_encoded(authorization))
        if token is None:
            message = "authorization metadata was missing" if status == 0 else "Unauthorized access"
            raise GrpcRefused(grpc.StatusCode.UNAUTHENTICATED, message)
        principal = await self.authenticator.authenticate(token)
        if not principal.has_any(self.invoke_mask):
            raise GrpcRefused(grpc.StatusCode.PERMISSION_DENIED, "Missing required scope 'invoke_function'")
        return principal

    async def _session(self, resume: str | None, function_id: str, nca_id: str) -> str:
        try:
            if resume is None:
                session_id = str(uuid.uuid4())
                await self.sessions.open(session_id, function_id, nca_id)
                return session_id
            if await self.sessions.resume(resume, function_id, nca_id):
                return resume
        except (RedisError, OSError) as exc:
            raise GrpcRefused(grpc.StatusCode.UNAVAILABLE, f"the session store is unavailable: {exc}") from None
        raise GrpcRefused(grpc.StatusCode.NOT_FOUND, "no existing session found")

    async def _submit(
        self,
        principal: Principal,
        function_id: str,
        version_id: str,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes,
        more: _Rest | None,
        window: int,
        context: Context,
    ) -> Invocation:
        now = time.time()
        lifetime = self.service.queue_lifetime
        remaining = context.time_remaining()
        if remaining is not None:
            lifetime = min(lifetime, max(0.0, remaining))
        request = InvocationRequest(
            request_id=str(uuid.uuid4()),
            function_id=function_id,
            version_id=version_id,
            method=GRPC if more is None else GRPC_STREAMING,
            path=method,
            headers=headers,
            body=body,
            compat=False,
            deadline_ms=int((now + lifetime) * 1000),
            subject=principal.subject,
            nca_id=principal.nca_id,
            poll_seconds=window,
            enqueued_at_ms=int(now * 1000),
        )
        invocation = Invocation(request)
        try:
            await self.dispatcher.submit(invocation)
        except QueueFull:
            raise GrpcRefused(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"Queue of function '{function_id}' is full"
            ) from None
        except BackendUnavailable:
            raise GrpcRefused(
                grpc.StatusCode.UNAVAILABLE, "The invocation queue is unavailable: Redis cannot be reached"
            ) from None
        return invocation

    async def _pump(self, invocation: Invocation, more: _Rest) -> None:
        """The client's further request messages, to wherever the invocation runs, at most
        ``REQUEST_WINDOW`` bytes ahead of the container's reading (each held against the byte
        budget until read): a client that writes faster waits, held back by HTTP/2 flow control."""
        budget = self.service.budget
        sent = held = 0
        try:
            async for message in more:
                data = frame(message)
                while True:
                    if invocation.final:
                        return
                    unread = sent - invocation.requests_read
                    if held > unread:
                        budget.release(held - unread)
                        held = unread
                    if not (unread and unread + len(data) > REQUEST_WINDOW) and budget.reserve(len(data)):
                        held += len(data)
                        break
                    # Window full: the next read wakes us. Budget full: look again shortly.
                    await invocation.changed(_BUDGET_RETRY_SECONDS)
                self.dispatcher.grpc_requests(invocation, data, False)
                sent += len(data)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return
        finally:
            budget.release(held)
        if not invocation.final:
            self.dispatcher.grpc_requests(invocation, b"", True)

    async def _answer(
        self, invocation: Invocation, window: int, session_id: str, context: Context
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        taken_by = loop.time() + window
        reader = FrameReader()
        started = False
        while True:
            answer = invocation.answer
            if answer is not None and not started:
                started = True
                initial = from_headers((k, v) for k, v in answer.headers if _relayable(k))
                await context.send_initial_metadata((*initial, ("nvcf-reqid", session_id)))
            if started:
                for chunk in invocation.drain_chunks():
                    if len(invocation.chunks) > 64 and _backlog(invocation) > self.service.stream_backlog:
                        # The client reads slower than the container answers: not held without bound.
                        refused = GrpcRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, "the client fell too far behind")
                        await self.dispatcher.cancel(invocation, "gRPC client too slow")
                        await _abort(context, refused, "")
                        return
                    try:
                        messages = reader.feed(chunk)
                    except FrameError as exc:
                        await _abort(context, GrpcRefused(grpc.StatusCode.INTERNAL, str(exc)), "")
                        return
                    for message in messages:
                        yield message
            if invocation.final and not invocation.chunks:
                break
            if invocation.final:
                continue
            waiting = invocation.state in (State.QUEUED, State.REQUEUED)
            if waiting and loop.time() >= taken_by:
                await self.dispatcher.cancel(invocation, "no worker took the gRPC call in time")
                refused = GrpcRefused(
                    grpc.StatusCode.UNAVAILABLE, f"no worker took the call within the poll window of {window} s"
                )
                await _abort(context, refused, session_id, started)
                return
            await invocation.changed(taken_by - loop.time() if waiting else None)
        invocation.delivered = True
        await self._finish(invocation, session_id, started, context)

    async def _finish(self, invocation: Invocation, session_id: str, started: bool, context: Context) -> None:
        trailers = invocation.trailers
        if invocation.state == State.FULFILLED and trailers is not None:
            metadata = from_headers((k, v) for k, v in trailers.metadata if _relayable(k))
            if not started:
                metadata.append(("nvcf-reqid", session_id))
            if trailers.code == 0:
                context.set_trailing_metadata(tuple(metadata))
                return
            code = _CODES.get(trailers.code, grpc.StatusCode.UNKNOWN)
            await context.abort(code, trailers.message, tuple(metadata))
        error = invocation.error or "the worker ended the call without a status"
        code = grpc.StatusCode.DEADLINE_EXCEEDED if "deadline" in error else grpc.StatusCode.UNAVAILABLE
        if invocation.state == State.FULFILLED:
            code = grpc.StatusCode.INTERNAL  # answered, but not by a gRPC call
        await _abort(context, GrpcRefused(code, error), session_id, started)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Rest:
    """The client's request messages after the first, while the call streams."""

    def __init__(self, pending: asyncio.Future[bytes] | None, first: bytes | None, rest: AsyncIterator[bytes]) -> None:
        self._pending = pending  # the read in progress when the call was submitted
        self._first = first  # or a message already read
        self._rest = rest

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._pending is not None:
            try:
                yield await self._pending
            except StopAsyncIteration:
                return
        elif self._first is not None:
            yield self._first
        async for message in self._rest:
            yield message


async def _first_messages(requests: AsyncIterator[bytes]) -> tuple[list[bytes], _Rest | None]:
    """The messages before the call is submitted; the rest of the stream, or None after a half-close."""
    iterator = aiter(requests)
    try:
        first = await anext(iterator)
    except StopAsyncIteration:
        return [], None
    following = asyncio.ensure_future(anext(iterator))
    done, _ = await asyncio.wait({following}, timeout=_HALF_CLOSE_WAIT)
    if not done:
        return [first], _Rest(following, None, iterator)
    try:
        second = following.result()
    except StopAsyncIteration:
        return [first], None
    return [first], _Rest(None, second, iterator)


def _backlog(invocation: Invocation) -> int:
    return sum(len(chunk) for chunk in invocation.chunks)


def _text_metadata(received: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in received:
        if isinstance(value, str):
            found.setdefault(key.lower(), value)
    return found


def _relayable(key: str) -> bool:
    lower = key.lower()
    if lower == "grpc-status-details-bin":
        return True  # the container's rich error details (google.rpc.Status), for the client
    return not (lower.startswith((":", "grpc-")) or lower in ("content-type", "nvcf-reqid"))


def _encoded(value: str | None) -> bytes | None:
    return None if value is None else value.encode("latin-1", "replace")


def _uuid(value: str | None, name: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise GrpcRefused(grpc.StatusCode.INVALID_ARGUMENT, f"{name} metadata is required")
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise GrpcRefused(grpc.StatusCode.INVALID_ARGUMENT, f"{name} must be a UUID") from None


async def _abort(context: Context, refused: GrpcRefused, session_id: str, started: bool = False) -> None:
    metadata = (("nvcf-reqid", session_id),) if session_id and not started else ()
    await context.abort(refused.code, refused.message, metadata)
