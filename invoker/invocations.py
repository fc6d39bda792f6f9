"""One invocation as this process knows it: request, state, and the answer as it arrives.

The answer is kept as fields plus a change signal, so that whoever is attached (the client's
pexec/TLB request, or a later status poll) can stream it, and so that an answer nobody is
waiting for accumulates for polling. ``InvocationTable`` holds them per process and forgets
finished ones after the result lifetime (or once a poll has delivered them).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from enum import IntEnum

from invoker.lifecycle import FINAL, Event, State, next_state

# ``InvocationRequest.method`` of a gRPC invocation: ``path`` is the full method name and ``body``
# the request messages in gRPC framing; with GRPC_STREAMING more follow while it runs.
GRPC = "GRPC"
GRPC_STREAMING = "GRPC-STREAM"


def is_grpc(method: str) -> bool:
    return method in (GRPC, GRPC_STREAMING)


@dataclass(slots=True)
class GrpcTrailers:
    """How the container's gRPC call ended."""

    code: int
    message: str
    metadata: list[tuple[str, str]]


class ResultKind(IntEnum):
    DIRECT = 0
    LARGE_RESULT = 1


@dataclass(slots=True)
class InvocationRequest:
    """What travels to the worker (and, with Redis, through the queue)."""

    request_id: str
    function_id: str
    version_id: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    compat: bool
    deadline_ms: int
    subject: str = ""
    nca_id: str = ""
    poll_seconds: int = 60
    enqueued_at_ms: int = 0
    assets: list[tuple[str, str, str]] = field(default_factory=list)  # (asset id, url, content type)
    origin: str = ""  # the gateway process holding the client (Redis mode): replies go there


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    kind: ResultKind = ResultKind.DIRECT


class Invocation:
    __slots__ = (
        "_at_final",
        "_listeners",
        "_waiters",
        "answer",
        "attempt",
        "chunks",
        "created",
        "delivered",
        "ended",
        "error",
        "final_hook",
        "finished_at",
        "percent",
        "partial",
        "progress_seq",
        "published",
        "reported_seq",
        "request",
        "session",
        "started_at",
        "state",
        "stored_path",
        "timer",
        "trailers",
    )

    def __init__(self, request: InvocationRequest) -> None:
        self.request = request
        self.state = State.QUEUED
        self.attempt = 0
        self.created = time.time()
        self.answer: Answer | None = None
        self.chunks: deque[bytes] = deque()
        self.ended = False
        self.error: str | None = None
        self.percent: int | None = None
        self.partial: bytes | None = None
        self.progress_seq = 0
        self.reported_seq = 0  # progress_seq last answered with a 202
        self.delivered = False
        self.published = False  # a 202 went out and the result is kept in Redis for any process
        self.finished_at: float | None = None
        self.started_at = 0.0  # time.time() of the worker's response start (first byte; metrics on)
        # Called once when the invocation becomes final (the metrics' latency observer).
        self.final_hook: Callable[[Invocation], None] | None = None
        self.session: object | None = None  # the worker session holding it, while dispatched
        self.timer: asyncio.TimerHandle | None = None
        self.stored_path: str | None = None  # large result spooled to disk
        self.trailers: GrpcTrailers | None = None  # a gRPC invocation's status, before it completes
        # Futures of whoever waits in ``changed`` (usually one: the client's answer loop). A
        # future and a timer per wait instead of ``wait_for`` on an Event: no task per wait.
        self._waiters: list[asyncio.Future[bool]] = []
        # One-shot callbacks for the next change: how the HTTP edge answers without a task.
        self._listeners: list[Callable[[], None]] = []
        # Run once, synchronously, when the invocation reaches a final state (bookkeeping that
        # must not wait for a loop pass, nor listen to every change until then).
        self._at_final: list[Callable[[], None]] | None = None

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def apply(self, event: Event) -> State:
        self.state = next_state(self.request_id, self.state, event)
        if self.state in FINAL and self.finished_at is None:
            self.finished_at = time.time()
            self.ended = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.final_hook is not None:
                self.final_hook(self)
            if self._at_final is not None:
                callbacks, self._at_final = self._at_final, None
                for callback in callbacks:
                    callback()
        self._notify()
        return self.state

    # --- answer from the worker -----------------------------------------------------------

    def start(self, answer: Answer) -> None:
        self.apply(Event.START)
        self.answer = answer
        if self.final_hook is not None:  # only the metrics read it
            self.started_at = time.time()

    def chunk(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)
            self._notify()

    def progress(self, percent: int, partial: bytes) -> None:
        self.apply(Event.PROGRESS)
        self.percent = max(0, min(100, percent))
        self.partial = partial
        self.progress_seq += 1

    def complete(self) -> None:
        self.apply(Event.COMPLETE)

    def fail(self, error: str) -> None:
        self.error = error
        self.apply(Event.FAIL)

    # --- consumers ------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._listeners:
            # Soon, not now: a worker message applies start, chunks and end in one go, and the
            # listener should see all of it (as a woken waiter does).
            listeners, self._listeners = self._listeners, []
            asyncio.get_running_loop().call_soon(_call_all, listeners)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(True)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` once, soon after the next change (a loop callback: no task, no future)."""
        self._listeners.append(listener)

    def at_final(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the invocation reaches a final state (now if it has)."""
        if self.final:
            callback()
        elif self._at_final is None:
            self._at_final = [callback]
        else:
            self._at_final.append(callback)

    def drop_listener(self, listener: Callable[[], None]) -> None:
        with suppress(ValueError):
            self._listeners.remove(listener)

    async def changed(self, timeout: float | None) -> bool:
        """Wait for the next change (one made after this call); False on timeout."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiters:  # timed out or cancelled: still listed (a notified one is not)
                with suppress(ValueError):
                    self._waiters.remove(waiter)

    def drain_chunks(self) -> Iterator[bytes]:
        while self.chunks:
            yield self.chunks.popleft()


def _call_all(listeners: list[Callable[[], None]]) -> None:
    for listener in listeners:
        listener()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class InvocationTable:
    """Invocations of this process by request id; finished ones kept ``result_ttl`` seconds."""

    def __init__(self, result_ttl: float) -> None:
        self.result_ttl = result_ttl
        self._items: dict[str, Invocation] = {}

    def add(self, invocation: Invocation) -> None:
        self._items[invocation.request_id] = invocation

    def get(self, request_id: str) -> Invocation | None:
        return self._items.get(request_id)

    def forget(self, request_id: str) -> None:
        self._items.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._items)

    def sweep(self, now: float) -> int:
        """Drop finished invocations whose result lifetime is over (or that were delivered)."""
        stale = [
            rid
            for rid, inv in self._items.items()
            if inv.finished_at is not None and (inv.delivered or now - inv.finished_at > self.result_ttl)
        ]
        for rid in stale:
            del self._items[rid]
        return len(stale)
