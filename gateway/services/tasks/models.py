"""NVCT request models: CreateTaskRequest with its validation rules, secrets, list queries.

Field names follow reference §10 (``CT/rest/**``). Choices where the reference is silent: exactly
one of ``containerImage`` and ``helmChart``; ``containerArgs`` is one string (as for functions);
``resultHandlingStrategy`` defaults to ``NONE``, and ``UPLOAD`` needs ``resultsLocation`` and
secrets (reference §17); durations are ISO-8601 ``PnDTnHnMnS``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from gateway.api.models import ApiModel
from gateway.services.functions.models import (
    ISO_DURATION,
    NAME_PATTERN,
    Artifact,
    ContainerEnvironmentEntry,
    Secret,
    Tag,
    Uri,
)

DEFAULT_MAX_QUEUED = "PT72H"
DEFAULT_GRACE = "PT1H"
DEFAULT_PAGE = 10
MAX_PAGE = 100
MAX_BULK = 100


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    LAUNCHED = "LAUNCHED"
    RUNNING = "RUNNING"
    ERRORED = "ERRORED"
    CANCELED = "CANCELED"
    EXCEEDED_MAX_RUNTIME_DURATION = "EXCEEDED_MAX_RUNTIME_DURATION"
    EXCEEDED_MAX_QUEUED_DURATION = "EXCEEDED_MAX_QUEUED_DURATION"
    COMPLETED = "COMPLETED"


ACTIVE = (TaskStatus.QUEUED.value, TaskStatus.LAUNCHED.value, TaskStatus.RUNNING.value)
ON_WORKER = (TaskStatus.LAUNCHED.value, TaskStatus.RUNNING.value)


class ResultHandlingStrategy(StrEnum):
    UPLOAD = "UPLOAD"
    NONE = "NONE"


def duration_seconds(value: str) -> float:
    """``P1DT2H3M4.5S`` → seconds (the pattern was checked by the model)."""
    match = ISO_DURATION.match(value)
    if match is None:
        raise ValueError(f"not an ISO-8601 duration: {value!r}")
    days, _, hours, minutes, seconds, _ = match.groups()
    total = 0.0
    for part, unit in ((days, 86400), (hours, 3600), (minutes, 60), (seconds, 1)):
        if part:
            total += float(part[:-1]) * unit
    return total


Duration = Annotated[str, StringConstraints(max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NAME_PATTERN)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TaskGpuSpecification(ApiModel):
    gpu: Short
    instanceType: Short
    backend: Short | None = None
    clusters: list[Short] | None = None
    configuration: dict[str, Any] | None = None
    helmValidationPolicy: dict[str, Any] | None = None


class CreateTaskRequest(ApiModel):
    name: Name
    gpuSpecification: TaskGpuSpecification
    containerImage: Uri | None = None
    helmChart: Uri | None = None
    containerArgs: Annotated[str, StringConstraints(max_length=4096)] | None = None
    containerEnvironment: list[ContainerEnvironmentEntry] | None = None
    models: list[Artifact] | None = None
    resources: list[Artifact] | None = None
    tags: list[Tag] | None = None
    description: Annotated[str, StringConstraints(max_length=256)] | None = None
    maxRuntimeDuration: Duration | None = None
    maxQueuedDuration: Duration = DEFAULT_MAX_QUEUED
    terminationGracePeriodDuration: Duration = DEFAULT_GRACE
    resultHandlingStrategy: ResultHandlingStrategy = ResultHandlingStrategy.NONE
    resultsLocation: Uri | None = None
    telemetries: dict[str, str] | None = None
    secrets: list[Secret] | None = None

    @field_validator("maxRuntimeDuration", "maxQueuedDuration", "terminationGracePeriodDuration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and (not ISO_DURATION.match(value) or duration_seconds(value) <= 0):
            raise ValueError("must be a positive ISO-8601 duration such as PT1H")
        return value

    @model_validator(mode="after")
    def _rules(self) -> CreateTaskRequest:
        if (self.containerImage is None) == (self.helmChart is None):
            raise ValueError("exactly one of containerImage and helmChart is required")
        if self.resultHandlingStrategy is ResultHandlingStrategy.UPLOAD and not (self.secrets and self.resultsLocation):
            raise ValueError("resultHandlingStrategy UPLOAD needs resultsLocation and secrets; use NONE")
        if self.secrets and len({s.name for s in self.secrets}) != len(self.secrets):
            raise ValueError("secret names must be unique")
        if self.containerEnvironment and len({e.key for e in self.containerEnvironment}) != len(
            self.containerEnvironment
        ):
            raise ValueError("containerEnvironment keys must be unique")
        return self


class UpdateTaskSecretsRequest(ApiModel):
    secrets: list[Secret] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _unique(self) -> UpdateTaskSecretsRequest:
        if len({s.name for s in self.secrets}) != len(self.secrets):
            raise ValueError("secret names must be unique")
        return self


class BulkTasksRequest(ApiModel):
    taskIds: list[Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")]] = Field(
        min_length=1, max_length=MAX_BULK
    )


class PageQuery(ApiModel):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


class ListTasksQuery(PageQuery):
    status: TaskStatus | None = None


class GetTaskQuery(ApiModel):
    includeSecrets: bool = False
