"""The worker agent's span of one invocation, ``container call``, when tracing is on.

Its parent is the ``traceparent`` the gateway put in the invocation's headers (the gateway's
``worker`` span); the container gets this span's ``traceparent`` in its place.
"""

from __future__ import annotations

from typing import Any

from invoker import tracing
from protos.cfgate.worker.v1 import worker_pb2 as pb


class ContainerCallSpan:
    __slots__ = ("span",)

    def __init__(self, tracer: Any, invocation: pb.Invocation, fields: dict[str, str]) -> None:
        carrier = {
            header.key.lower(): header.value
            for header in invocation.headers
            if header.key.lower() in (tracing.TRACEPARENT, tracing.TRACESTATE)
        }
        self.span = tracer.start_span(
            "container call",
            context=tracing.parent_context(carrier),
            kind=tracing.span_kind("CLIENT"),
            attributes={f"nvcf.{name}": value for name, value in fields.items() if value},
        )

    def traceparent(self) -> str:
        context = self.span.get_span_context()
        return tracing.traceparent(context.trace_id, context.span_id, int(context.trace_flags))

    def replace_in(self, headers: list[tuple[str, str]]) -> None:
        """Put this span's ``traceparent`` in the container request's ``headers``."""
        headers[:] = [(name, value) for name, value in headers if name.lower() != tracing.TRACEPARENT]
        headers.append((tracing.TRACEPARENT, self.traceparent()))

    def answered(self, status: int) -> None:
        self.span.set_attribute("http.response.status_code", status)

    def end(self, error: str) -> None:
        if error:
            tracing.set_error(self.span, error)
        self.span.end()
