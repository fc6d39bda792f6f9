"""OpenTelemetry traces, when the standard ``OTEL_*`` environment asks for them (extra ``[otel]``).

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``), or it is
unset and ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, and
``OTEL_SDK_DISABLED`` is not ``true``. The SDK reads the rest itself: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, the OTLP endpoint, headers
and timeout. OTLP goes over HTTP/protobuf (``opentelemetry-exporter-otlp-proto-http``).

Off (the default), nothing of OpenTelemetry is imported and ``process_tracer`` is ``None``: the
code paths that trace check that one value and do nothing else.

Span ids can be chosen before a span exists (``preset_span_id``): the gateway hands the worker
the id of its ``worker`` span at enqueue time, and records that span once the answer is in.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("invoker.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_UNSET: Any = object()
_tracer: Any = _UNSET
_provider: Any = None
_preset: contextvars.ContextVar[int] = contextvars.ContextVar("cfgate_preset_span_id", default=0)


def tracing_requested(env: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if env is None else env
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER")
    if exporters is not None and exporters.strip():
        return any(name.strip().lower() not in ("", "none") for name in exporters.split(","))
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def process_tracer(default_service: str) -> Any | None:
    """This process's tracer (set up on the first call), or ``None`` when tracing is off."""
    global _tracer
    if _tracer is _UNSET:
        _tracer = _start(default_service) if tracing_requested() else None
    return _tracer


def shutdown() -> None:
    """Export what is still buffered (the SDK also does this at interpreter exit)."""
    if _provider is not None:
        _provider.shutdown()


def new_span_id() -> int:
    # As the SDK's own ids: span ids need to be unique, not secret (os.urandom costs far more).
    return random.getrandbits(64) or 1


@contextmanager
def preset_span_id(span_id: int) -> Iterator[None]:
    """The next span started in this block gets ``span_id``."""
    token = _preset.set(span_id)
    try:
        yield
    finally:
        _preset.reset(token)


def traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def take_trace_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Remove ``traceparent`` / ``tracestate`` from ``headers``; what they held (lower-case names)."""
    found: dict[str, str] = {}
    kept = []
    for name, value in headers:
        lower = name.lower()
        if lower in (TRACEPARENT, TRACESTATE):
            found.setdefault(lower, value)
        else:
            kept.append((name, value))
    headers[:] = kept
    return found


def parent_context(carrier: Mapping[str, str]) -> Any:
    """The OpenTelemetry context of an incoming ``traceparent`` (an empty one without it)."""
    if not carrier:
        return None
    return _api().propagator.extract(carrier)


def context_with(span: Any) -> Any:
    return _api().set_span_in_context(span)


def span_kind(name: str) -> Any:
    return getattr(_api().SpanKind, name)


def set_error(span: Any, description: str) -> None:
    api = _api()
    span.set_status(api.Status(api.StatusCode.ERROR, description))


class _Api:
    """The OpenTelemetry API names used per span, imported once (only once tracing is on)."""

    def __init__(self) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.SpanKind = SpanKind
        self.Status = Status
        self.StatusCode = StatusCode
        self.set_span_in_context = set_span_in_context
        self.propagator = TraceContextTextMapPropagator()


_api_names: _Api | None = None


def _api() -> _Api:
    global _api_names
    if _api_names is None:
        _api_names = _Api()
    return _api_names


def _start(default_service: str) -> Any | None:
    global _provider
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    except ImportError:
        log.warning("OTEL_* asks for traces but OpenTelemetry is not installed: pip install 'cfgate[otel]'")
        return None

    class PresetIds(RandomIdGenerator):
        def generate_span_id(self) -> int:
            preset = _preset.get()
            return preset if preset else super().generate_span_id()

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "unknown_service")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service}))
    provider = TracerProvider(resource=resource, id_generator=PresetIds())
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp") or "otlp"
    for name in (part.strip().lower() for part in names.split(",")):
        exporter: SpanExporter
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %r is not supported; exporting over http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        elif name in ("", "none"):
            continue
        else:
            log.warning("trace exporter %r is not supported (otlp, console); ignored", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    return provider.get_tracer("cfgate")
