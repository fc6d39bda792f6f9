"""An invocation taken here from the shared queue whose client waits in another gateway process.

It runs the usual state machine (the dispatcher checks states as for a local one), but its answer
is not kept for a client here: every start, chunk, progress and end is relayed to the origin
process (``invoker.replies``). The body is also kept (up to ``KEEP_BYTES``) in case the origin
turns out to be dead at the end, when the result is stored in Redis for polling instead.
"""

from __future__ import annotations

from collections.abc import Callable

from invoker.invocations import GRPC_STREAMING, Answer, Invocation, InvocationRequest
from invoker.lifecycle import Event, State
from invoker.replies import CHUNK, END, PROGRESS, READ, START, TAKEN, Reply, ReplyBus

KEEP_BYTES = 8 << 20


class RemoteInvocation(Invocation):
    __slots__ = ("body", "bus", "on_final", "quiet")

    def __init__(self, request: InvocationRequest, bus: ReplyBus, on_final: Callable[[RemoteInvocation], None]) -> None:
        super().__init__(request)
        self.bus = bus
        self.on_final = on_final
        self.body = bytearray()
        self.quiet = False  # the origin itself cancelled it: nothing to tell it

    def _relay(self, kind: bytes, **fields: object) -> None:
        reply = Reply(kind, self.request_id, self.attempt, self.bus.process_id, **fields)  # type: ignore[arg-type]
        self.bus.send(self.request.origin, reply)

    def start(self, answer: Answer) -> None:
        super().start(answer)
        self._relay(START, status=answer.status, headers=answer.headers, result_kind=int(answer.kind))

    def chunk(self, data: bytes) -> None:
        if data:
            self._relay(CHUNK, data=data)
            if len(self.body) + len(data) <= KEEP_BYTES:
                self.body += data

    def read_requests(self, size: int) -> None:
        self._relay(READ, status=size)  # the origin's pump sends the client's next messages

    def progress(self, percent: int, partial: bytes) -> None:
        super().progress(percent, partial)
        self._relay(PROGRESS, percent=self.percent or 0, data=partial)

    def apply(self, event: Event) -> State:
        was_final = self.final
        state = super().apply(event)
        if state == State.DISPATCHED and self.request.method == GRPC_STREAMING:
            self._relay(TAKEN)  # the origin sends the client's further messages here
        if state != State.REQUEUED and self.final and not was_final:
            if not self.quiet:
                trailers = self.trailers
                self._relay(
                    END,
                    error="" if state == State.FULFILLED else (self.error or "invocation failed"),
                    trailers=None if trailers is None else (trailers.code, trailers.message, trailers.metadata),
                )
            self.on_final(self)
        return state
