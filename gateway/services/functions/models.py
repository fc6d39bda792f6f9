"""Function DTOs: CreateFunctionRequest with every NVCF validation rule, UpdateFunctionRequest, FunctionDto.

Field names and rules follow NVCF's ``CreateFunctionRequest.java`` and reference §4.5. Choices
where the reference is silent: ``inferenceUrl`` must be an absolute path (``/echo``, ``/grpc``);
a ``rateLimit`` must limit something (a global, per-account or per-user rate), and names at most
32 accounts in ``exemptedNcaIds`` (NVCF's bound) and 1000 in ``perNcaIdRate`` (ours).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import Field, StringConstraints, field_validator, model_validator

from gateway.api.models import ApiModel

NAME_PATTERN = r"^[a-z0-9A-Z][a-z0-9A-Z\-_]*$"
TAG_PATTERN = r"^[a-zA-Z0-9\-_:=]+$"
SECRET_NAME_PATTERN = r"^[a-z0-9A-Z][a-z0-9A-Z_.\-]*$"
# NVCF rate limits: "<count>-<unit>" entries, comma separated, unit S/M/H/D.
RATE_LIMIT_PATTERN = r"^[1-9][0-9]*-[SMHD](,[1-9][0-9]*-[SMHD])*$"
ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
MAX_SECRET_VALUE = 32768

UriPath = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^/[^\s]*$")]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^[^\s]+$")]
Tag = Annotated[str, StringConstraints(max_length=128, pattern=TAG_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]


class FunctionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DEPLOYING = "DEPLOYING"
    ERROR = "ERROR"
    INACTIVE = "INACTIVE"
    DELETED = "DELETED"
    DEGRADED = "DEGRADED"
    DEGRADING = "DEGRADING"


class ApiBodyFormat(StrEnum):
    PREDICT_V2 = "PREDICT_V2"
    CUSTOM = "CUSTOM"


class FunctionType(StrEnum):
    DEFAULT = "DEFAULT"
    STREAMING = "STREAMING"
    LLM = "LLM"


class HealthProtocol(StrEnum):
    HTTP = "HTTP"
    GRPC = "GRPC"


class Health(ApiModel):
    protocol: HealthProtocol
    uri: Uri
    port: Port
    timeout: str
    expectedStatusCode: Annotated[int, Field(ge=100, le=599)]

    @field_validator("timeout")
    @classmethod
    def _iso_duration(cls, value: str) -> str:
        if not ISO_DURATION.match(value):
            raise ValueError("must be an ISO-8601 duration such as PT10S")
        return value


class ContainerEnvironmentEntry(ApiModel):
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    value: Annotated[str, StringConstraints(max_length=32768)]


class LlmConfig(ApiModel):
    uris: list[Uri] | None = None
    routingMethod: str | None = None
    # Tokens per window, in rateLimit's form ("10000-M"), counted from the usage the container reports.
    tokenRateLimit: Annotated[str, StringConstraints(pattern=RATE_LIMIT_PATTERN, max_length=128)] | None = None


class FunctionModel(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    version: str | None = None
    uri: Uri | None = None
    llmConfig: LlmConfig | None = None


class Artifact(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    uri: Uri


class Secret(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=SECRET_NAME_PATTERN)]
    value: str | dict[str, Any]

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        size = len(value) if isinstance(value, str) else len(orjson.dumps(value))
        if size > MAX_SECRET_VALUE:
            raise ValueError(f"secret value exceeds {MAX_SECRET_VALUE} characters")
        return value


Rate = Annotated[str, StringConstraints(pattern=RATE_LIMIT_PATTERN, max_length=128)]
NcaId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s]+$")]
MAX_EXEMPTED_ACCOUNTS = 32  # NVCF's (nvcf-cli's RateLimitDto says so)
MAX_RATE_ACCOUNTS = 1000  # ours: NVCF states no bound for perNcaIdRate


class RateLimit(ApiModel):
    """NVCF's ``RateLimitDto`` (enforced by ``gateway.invocation.rate_policy``)."""

    rateLimit: Rate | None = None
    exemptedNcaIds: Annotated[list[NcaId], Field(max_length=MAX_EXEMPTED_ACCOUNTS)] | None = None
    perNcaIdRate: Annotated[dict[NcaId, Rate], Field(max_length=MAX_RATE_ACCOUNTS)] | None = None
    syncCheck: bool | None = None
    perUserRate: Rate | None = None

    @model_validator(mode="after")
    def _limits_something(self) -> RateLimit:
        if self.rateLimit is None and not self.perNcaIdRate and self.perUserRate is None:
            raise ValueError("Invalid request: rateLimit needs one of 'rateLimit', 'perNcaIdRate' or 'perUserRate'")
        return self


class Telemetries(ApiModel):
    logsTelemetryId: str | None = None
    metricsTelemetryId: str | None = None
    tracesTelemetryId: str | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Telemetries:
        if not (self.logsTelemetryId or self.metricsTelemetryId or self.tracesTelemetryId):
            raise ValueError("Telemetry object must have at least one UUID specified.")
        return self


class Priority(ApiModel):
    defaultPriority: int | None = None
    perAccountPriority: dict[str, int] | None = None


class LlmInvocationConfig(ApiModel):
    priority: Priority | None = None


class CreateFunctionRequest(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NAME_PATTERN)]
    inferenceUrl: UriPath
    healthUri: Uri | None = None
    inferencePort: Port | None = None
    health: Health | None = None
    containerArgs: Annotated[str, StringConstraints(max_length=4096)] | None = None
    containerEnvironment: list[ContainerEnvironmentEntry] | None = None
    models: list[FunctionModel] | None = None
    containerImage: Uri | None = None
    utilsContainerImage: Annotated[str, StringConstraints(max_length=2048)] | None = None
    helmChart: Uri | None = None
    helmChartServiceName: Annotated[str, StringConstraints(max_length=253)] | None = None
    resources: list[Artifact] | None = None
    apiBodyFormat: ApiBodyFormat = ApiBodyFormat.CUSTOM
    tags: Annotated[list[Tag], Field(max_length=64)] | None = None
    description: Annotated[str, StringConstraints(max_length=256)] | None = None
    secrets: list[Secret] | None = None
    functionType: FunctionType = FunctionType.DEFAULT
    rateLimit: RateLimit | None = None
    llmInvocationConfig: LlmInvocationConfig | None = None
    telemetries: Telemetries | None = None

    @model_validator(mode="after")
    def _cross_field_rules(self) -> CreateFunctionRequest:
        helm = self.helmChart
        if self.containerImage is None and not self.models and helm is None:
            raise ValueError(
                "Invalid request: One of the following properties 'containerImage', 'models', "
                "or 'helmChart' must be specified in the payload"
            )
        for other, value in (
            ("containerImage", self.containerImage),
            ("containerArgs", self.containerArgs),
            ("containerEnvironment", self.containerEnvironment),
        ):
            if helm is not None and value not in (None, ""):
                raise ValueError(
                    f"Invalid request: Cannot specify both '{other}' and 'helmChart' properties in the payload"
                )
        if (helm is None) != (not (self.helmChartServiceName or "").strip()):
            raise ValueError(
                "Invalid request: Either both or none of 'helmChart' and 'helmChartServiceName' "
                "properties must be specified"
            )
        self._check_models()
        if self.secrets and len({s.name for s in self.secrets}) != len(self.secrets):
            raise ValueError("Invalid request: duplicate secret names")
        return self

    def _check_models(self) -> None:
        if self.functionType == FunctionType.LLM and not self.models:
            raise ValueError("Invalid request: 'models' must be specified when functionType is LLM")
        if not self.models:
            return
        if len({m.name for m in self.models}) != len(self.models):
            raise ValueError("Invalid request: duplicate model names are not allowed in 'models'")
        for model in self.models:
            if self.functionType == FunctionType.LLM:
                if model.llmConfig is None:
                    raise ValueError("Invalid request: LLM function models must specify 'llmConfig'")
                if not model.llmConfig.uris:
                    raise ValueError("Invalid request: LLM function models must specify non-empty 'llmConfig.uris'")
            elif model.version is None or model.uri is None:
                raise ValueError("Invalid request: non-LLM function models must specify both 'version' and 'uri'")


class ModelUpdate(ApiModel):
    modelName: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    llmConfig: LlmConfig


class UpdateFunctionRequest(ApiModel):
    tags: Annotated[list[Tag], Field(max_length=64)] | None = None
    rateLimit: RateLimit | None = None
    modelUpdates: list[ModelUpdate] | None = None
    llmInvocationConfig: LlmInvocationConfig | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateFunctionRequest:
        if (
            self.tags is None
            and self.rateLimit is None
            and self.modelUpdates is None
            and self.llmInvocationConfig is None
        ):
            raise ValueError(
                "Invalid request: one of 'tags', 'rateLimit', 'modelUpdates' or 'llmInvocationConfig' is required"
            )
        return self


class Instance(ApiModel):
    instanceId: str
    functionId: str
    functionVersionId: str
    instanceType: str | None = None
    instanceStatus: str
    icmsRequestId: str | None = None
    ncaId: str
    gpu: str | None = None
    backend: str | None = None
    location: str | None = None
    instanceCreatedAt: str
    instanceUpdatedAt: str


class FunctionDto(ApiModel):
    id: str
    ncaId: str
    versionId: str
    name: str
    status: FunctionStatus
    inferenceUrl: str | None = None
    ownedByDifferentAccount: bool | None = None
    inferencePort: int | None = None
    containerArgs: str | None = None
    containerEnvironment: list[ContainerEnvironmentEntry] | None = None
    models: list[FunctionModel] | None = None
    containerImage: str | None = None
    apiBodyFormat: ApiBodyFormat | None = None
    helmChart: str | None = None
    helmChartServiceName: str | None = None
    healthUri: str | None = None
    createdAt: str
    # nvcf-cli reads creationTime; sending both is harmless (reference §17).
    creationTime: str | None = None
    activeInstances: list[Instance] | None = None
    resources: list[Artifact] | None = None
    tags: list[str] | None = None
    description: str | None = None
    health: Health | None = None
    functionType: FunctionType | None = None
    secrets: list[str] | None = None
    rateLimit: RateLimit | None = None
    llmInvocationConfig: LlmInvocationConfig | None = None
    telemetries: Telemetries | None = None


class FunctionResponse(ApiModel):
    function: FunctionDto


class FunctionListResponse(ApiModel):
    functions: list[FunctionDto]


class FunctionIdsResponse(ApiModel):
    functionIds: list[str]
