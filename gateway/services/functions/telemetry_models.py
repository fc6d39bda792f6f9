"""Telemetry DTOs, as NVCF's ``rest/telemetry/dto`` (``TelemetryRequest``, ``TelemetryDto``,
``TelemetryResponse``, ``ListTelemetryResponse``) and its enums.

Enum values are accepted in any letter case (NVCF's JSON mapper has ``ACCEPT_CASE_INSENSITIVE_ENUMS``)
and always answered upper case.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, field_validator

from gateway.api.models import ApiModel
from gateway.services.functions.models import Secret


def upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class TelemetryProtocol(StrEnum):
    HTTP = "HTTP"
    GRPC = "GRPC"


class TelemetryProvider(StrEnum):
    PROMETHEUS = "PROMETHEUS"
    GRAFANA_CLOUD = "GRAFANA_CLOUD"
    SPLUNK = "SPLUNK"
    DATADOG = "DATADOG"
    SERVICENOW = "SERVICENOW"
    KRATOS = "KRATOS"
    KRATOS_THANOS = "KRATOS_THANOS"
    TIMESTREAM = "TIMESTREAM"
    VICTORIAMETRICS = "VICTORIAMETRICS"
    AZURE_MONITOR = "AZURE_MONITOR"
    OTEL_COLLECTOR = "OTEL_COLLECTOR"


class TelemetryType(StrEnum):
    LOGS = "LOGS"
    METRICS = "METRICS"
    TRACES = "TRACES"


Protocol = Annotated[TelemetryProtocol, BeforeValidator(upper)]
Provider = Annotated[TelemetryProvider, BeforeValidator(upper)]
Kind = Annotated[TelemetryType, BeforeValidator(upper)]


def ordered_types(types: list[TelemetryType] | list[str]) -> list[TelemetryType]:
    """A set of types, rendered in the enum's order."""
    wanted = {TelemetryType(t) for t in types}
    return [t for t in TelemetryType if t in wanted]


class TelemetryRequest(ApiModel):
    endpoint: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"\S")]
    protocol: Protocol
    provider: Provider
    types: Annotated[list[Kind], Field(min_length=1)]
    secret: Secret

    @field_validator("types")
    @classmethod
    def _as_set(cls, value: list[TelemetryType]) -> list[TelemetryType]:
        return ordered_types(value)


class TelemetryDto(ApiModel):
    telemetryId: str
    name: str
    endpoint: str
    protocol: TelemetryProtocol
    provider: TelemetryProvider
    types: list[TelemetryType]
    createdAt: str


class TelemetryResponse(ApiModel):
    telemetry: TelemetryDto


class ListTelemetryResponse(ApiModel):
    telemetries: list[TelemetryDto]
