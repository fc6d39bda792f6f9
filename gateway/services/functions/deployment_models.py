"""Deployment DTOs: GpuSpecificationDto (with NVCF's rules), deployment requests and responses.

Field names and rules follow reference §4.2/§4.5 and NVCF's ``GpuSpecificationDto``,
``AutoscalingConfigurationDto``, ``UpdateGpuSpecificationRequest`` and
``DeploymentValidationService``. Choices where the reference is silent:

* ``helmValidationPolicy.name`` is matched case-insensitively (nvcf-cli sends ``Default`` and
  ``Unrestricted``; the enum is ``DEFAULT|UNRESTRICTED``) and echoed back as sent.
* Two specifications with the same ``gpu`` + ``instanceType`` (case-insensitive, as NVCF matches
  GPU names) are a 400: nvcf-cli's ``deploy update`` selects a spec by that pair.
* The set-valued fields (``availabilityZones``, ``clusters``, ``regions``, ``attributes``) keep
  their first-seen order with duplicates removed.
* Strings are bounded (names 256, free strings 1024, sets 256 items) so one request cannot
  grow a row without limit; the body limit of the api host caps ``configuration``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from gateway.api.models import ApiModel
from gateway.services.functions.models import FunctionStatus

MAX_REQUEST_CONCURRENCY = 16384
HELM_POLICY_NAMES = ("DEFAULT", "UNRESTRICTED")
MAX_STICKINESS_SECONDS = 3600.0
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<d>\d+)D)?(?:T(?=\d)(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"\S")]
Text = Annotated[str, StringConstraints(max_length=1024)]
Item = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


StringSet = Annotated[list[Item], Field(max_length=256), AfterValidator(_unique)]


def duration_seconds(value: str) -> float:
    """ISO-8601 ``PnDTnHnMn.nS`` (as Java's ``Duration`` prints it) → seconds; ValueError otherwise."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError("must be an ISO-8601 duration such as PT30M")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


class KubernetesType(ApiModel):
    group: Annotated[str, StringConstraints(max_length=253)] = ""
    version: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    kind: Annotated[str, StringConstraints(min_length=1, max_length=253)]


class HelmValidationPolicy(ApiModel):
    name: str
    extraKubernetesTypes: Annotated[list[KubernetesType], Field(max_length=256)] | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value.upper() not in HELM_POLICY_NAMES:
            raise ValueError("must be one of DEFAULT, UNRESTRICTED")
        return value


class StickinessWindow(ApiModel):
    size: str
    threshold: str

    @model_validator(mode="after")
    def _window(self) -> StickinessWindow:
        size, threshold = duration_seconds(self.size), duration_seconds(self.threshold)
        if size > MAX_STICKINESS_SECONDS or threshold >= size:
            raise ValueError(
                "Invalid request: Invalid stickiness window - size and threshold required, size must be less "
                "than or equal to one hour and threshold must be less than size."
            )
        return self


class ScalingDetails(ApiModel):
    metric: Annotated[str, StringConstraints(max_length=256)] | None = None
    factor: Annotated[float, Field(gt=0)]
    threshold: Annotated[int, Field(ge=0, le=100)]
    stickiness: StickinessWindow | None = None


class AutoscalingConfiguration(ApiModel):
    scaleUpDetails: ScalingDetails | None = None
    scaleDownDetails: ScalingDetails | None = None

    @model_validator(mode="after")
    def _directions(self) -> AutoscalingConfiguration:
        if self.scaleUpDetails is not None and self.scaleUpDetails.factor <= 1.0:
            raise ValueError(
                "Invalid request: Missing or invalid factor/threshold in scaleUpDetails. "
                "Factor must be greater than 1.0."
            )
        if self.scaleDownDetails is not None and self.scaleDownDetails.factor >= 1.0:
            raise ValueError(
                "Invalid request: Missing or invalid factor/threshold in scaleDownDetails. "
                "Factor must be less than 1.0."
            )
        return self


class AutoscalingConfigurationPolicy(StrEnum):
    CUSTOM_CONFIGURATION = "CUSTOM_CONFIGURATION"
    PLATFORM_CONFIGURATION = "PLATFORM_CONFIGURATION"


def _min_le_max(min_instances: int, max_instances: int) -> None:
    if min_instances > max_instances:
        raise ValueError(
            f"Invalid request: minInstances '{min_instances}' must be lesser than or equal to "
            f"maxInstances '{max_instances}'"
        )


class GpuSpecification(ApiModel):
    """One entry of ``deploymentSpecifications`` as a client sends it (``gpuSpecificationId`` is ignored)."""

    gpu: Name
    instanceType: Name
    minInstances: Annotated[int, Field(ge=0)]
    maxInstances: Annotated[int, Field(ge=1)]
    maxRequestConcurrency: Annotated[int, Field(ge=1, le=MAX_REQUEST_CONCURRENCY)] | None = None
    backend: Annotated[str, StringConstraints(max_length=256)] | None = None
    availabilityZones: StringSet | None = None
    clusters: StringSet | None = None
    regions: StringSet | None = None
    attributes: StringSet | None = None
    configuration: dict[str, Any] | None = None
    preferredOrder: Annotated[int, Field(ge=1, le=99)] | None = None
    cpuArch: Text | None = None
    os: Text | None = None
    driverVersion: Text | None = None
    storage: Text | None = None
    systemMemory: Text | None = None
    gpuMemory: Text | None = None
    autoscalingConfiguration: AutoscalingConfiguration | None = None
    helmValidationPolicy: HelmValidationPolicy | None = None

    @model_validator(mode="after")
    def _instances(self) -> GpuSpecification:
        _min_le_max(self.minInstances, self.maxInstances)
        if self.maxRequestConcurrency is None:
            self.maxRequestConcurrency = 1
        return self


class GpuSpecificationDto(GpuSpecification):
    """A stored specification, as every deployment response renders it."""

    gpuSpecificationId: str


class FunctionDeploymentRequest(ApiModel):
    deploymentSpecifications: Annotated[list[GpuSpecification], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _distinct(self) -> FunctionDeploymentRequest:
        seen: set[tuple[str, str]] = set()
        for spec in self.deploymentSpecifications:
            key = (spec.gpu.lower(), spec.instanceType.lower())
            if key in seen:
                raise ValueError(
                    f"Invalid request: duplicate deployment specification for gpu '{spec.gpu}' "
                    f"and instanceType '{spec.instanceType}'"
                )
            seen.add(key)
        return self


class UpdateGpuSpecification(ApiModel):
    """An entry of the deprecated PUT: identifies a spec and sets its instance counts and concurrency."""

    gpuSpecificationId: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    gpu: Name
    instanceType: Name
    minInstances: Annotated[int, Field(ge=0)]
    maxInstances: Annotated[int, Field(ge=1)]
    maxRequestConcurrency: Annotated[int, Field(ge=1, le=MAX_REQUEST_CONCURRENCY)] | None = None
    backend: Annotated[str, StringConstraints(max_length=256)] | None = None
    clusters: StringSet | None = None

    @model_validator(mode="after")
    def _instances(self) -> UpdateGpuSpecification:
        _min_le_max(self.minInstances, self.maxInstances)
        return self


class UpdateFunctionDeploymentRequest(ApiModel):
    deploymentSpecifications: Annotated[list[UpdateGpuSpecification], Field(min_length=1, max_length=64)]


class UpdateGpuSpecificationRequest(ApiModel):
    """PATCH body: at least one field (NVCF's ``validateUpdateGpuSpecificationRequest``)."""

    minInstances: Annotated[int, Field(ge=0)] | None = None
    maxInstances: Annotated[int, Field(ge=1)] | None = None
    autoscalingConfiguration: AutoscalingConfiguration | None = None
    autoscalingConfigurationPolicy: AutoscalingConfigurationPolicy | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateGpuSpecificationRequest:
        if (
            self.minInstances is None
            and self.maxInstances is None
            and self.autoscalingConfiguration is None
            and self.autoscalingConfigurationPolicy is None
        ):
            raise ValueError(
                "Invalid request: Empty update gpu specification request. At least one field should be provided."
            )
        if self.minInstances is not None and self.maxInstances is not None:
            _min_le_max(self.minInstances, self.maxInstances)
        return self


class DeploymentHealth(ApiModel):
    icmsRequestId: str | None = None
    gpu: str | None = None
    backend: str | None = None
    instanceType: str | None = None
    error: str | None = None


class FunctionDeploymentDto(ApiModel):
    functionId: str
    functionVersionId: str
    deploymentId: str
    functionName: str
    ncaId: str
    functionStatus: FunctionStatus
    healthInfo: list[DeploymentHealth] | None = None
    deploymentSpecifications: list[GpuSpecificationDto]
    createdAt: str
    lastUpdatedAt: str


class DeploymentResponse(ApiModel):
    deployment: FunctionDeploymentDto


class DeploymentList(ApiModel):
    """``GET /v2/nvcf/deployments`` (NGC's ``ngc cf deploy list``): the account's deployments."""

    deployments: list[FunctionDeploymentDto]


class GpuSpecificationResponse(ApiModel):
    gpuSpecification: GpuSpecificationDto


class DeleteDeploymentQuery(ApiModel):
    graceful: bool = False


# Called with the caller's account and the specifications before anything is written; raises
# ``gateway.problems.BadRequest`` for a GPU or instance type no cluster offers. The gateway uses
# ``gateway.services.clusters.offers.ClusterGpuValidator``; ``accept_all_gpus`` accepts every name.
GpuValidator = Callable[[str, Sequence[GpuSpecification]], Awaitable[None]]


async def accept_all_gpus(nca_id: str, specs: Sequence[GpuSpecification]) -> None:
    return None
