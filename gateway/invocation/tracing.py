"""An invocation's spans: ``invocation`` with children ``queue wait`` and ``worker``.

Called once per invocation just before it is queued (only when tracing is on): the incoming
``traceparent`` (if any) is the parent of the ``invocation`` span, and the request's
``traceparent`` header is replaced by the ``worker`` span's, so the worker agent and then the
container continue the trace. The ``worker`` span's id is chosen now, the span itself recorded
when the invocation ends, with the times it was handed to a worker and ended (the state
changes are followed with ``Invocation.on_change``: no task, nothing on the answer's path).
"""

from __future__ import annotations

import time
from typing import Any

from invoker import tracing
from invoker.invocations import Invocation
from invoker.lifecycle import State

_AT_WORKER = frozenset({State.DISPATCHED, State.RUNNING})


class InvocationTracing:
    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    def __call__(self, invocation: Invocation) -> None:
        request = invocation.request
        incoming = tracing.take_trace_headers(request.headers)
        attributes = {
            "nvcf.request_id": request.request_id,
            "nvcf.function_id": request.function_id,
            "nvcf.function_version_id": request.version_id,
            "nvcf.nca_id": request.nca_id,
        }
        span = self.tracer.start_span(
            "invocation",
            context=tracing.parent_context(incoming),
            kind=tracing.span_kind("SERVER"),
            start_time=int(invocation.created * 1e9),
            attributes=attributes,
        )
        own = span.get_span_context()
        worker_span_id = tracing.new_span_id()
        request.headers.append(
            (tracing.TRACEPARENT, tracing.traceparent(own.trace_id, worker_span_id, int(own.trace_flags)))
        )
        if tracing.TRACESTATE in incoming:
            request.headers.append((tracing.TRACESTATE, incoming[tracing.TRACESTATE]))
        _Watch(self.tracer, invocation, span, worker_span_id).listen()


class _Watch:
    __slots__ = ("dispatched", "invocation", "span", "tracer", "worker_span_id")

    def __init__(self, tracer: Any, invocation: Invocation, span: Any, worker_span_id: int) -> None:
        self.tracer = tracer
        self.invocation = invocation
        self.span = span
        self.worker_span_id = worker_span_id
        self.dispatched = 0

    def listen(self) -> None:
        self.invocation.on_change(self._changed)

    def _changed(self) -> None:
        invocation = self.invocation
        # Handed to a worker: DISPATCHED, or already past it (a whole answer in one message).
        if not self.dispatched and (invocation.state in _AT_WORKER or invocation.answer is not None):
            self.dispatched = time.time_ns()
        if invocation.final:
            self._end()
        else:
            self.listen()

    def _end(self) -> None:
        invocation = self.invocation
        ended = int((invocation.finished_at or time.time()) * 1e9)
        parent = tracing.context_with(self.span)
        started = int(invocation.created * 1e9)
        queued = self.tracer.start_span("queue wait", context=parent, start_time=started)
        queued.end(end_time=self.dispatched or ended)
        state = invocation.state
        if self.dispatched:
            with tracing.preset_span_id(self.worker_span_id):
                worker = self.tracer.start_span(
                    "worker",
                    context=parent,
                    kind=tracing.span_kind("CLIENT"),
                    start_time=self.dispatched,
                    attributes={"nvcf.attempts": max(1, invocation.attempt)},
                )
            if invocation.answer is not None:
                worker.set_attribute("http.response.status_code", invocation.answer.status)
            if state != State.FULFILLED:
                tracing.set_error(worker, invocation.error or state.value)
            worker.end(end_time=ended)
        self.span.set_attribute("nvcf.status", state.value)
        if invocation.answer is not None:
            self.span.set_attribute("http.response.status_code", invocation.answer.status)
        if state != State.FULFILLED:
            tracing.set_error(self.span, invocation.error or state.value)
        self.span.end(end_time=ended)
