"""Registry-credential DTOs, as NVCF's ``rest/registry/dto`` (``AddRegistryCredentialRequest``,
``UpdateRegistryCredentialRequest``, ``RegistryCredentialDetailsDto``,
``RegistryCredentialDetailsResponse``, ``ListRegistryCredentialDetailsResponse``,
``RecognizedRegistriesResponse``).

Enum values are accepted in any letter case (NVCF's JSON mapper and query binding are case
insensitive) and always answered upper case. Hostnames follow NVCF's ``HOSTNAME_REGEX``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, field_validator

from gateway.api.models import ApiModel
from gateway.services.functions.models import TAG_PATTERN, Secret
from gateway.services.functions.telemetry_models import upper

# NvcfConstants.HOSTNAME_REGEX (4..253 chars, dot-separated labels, alphanumeric TLD); it needs
# look-arounds, which pydantic's own (Rust) patterns lack, hence Python's ``re``.
HOSTNAME = re.compile(r"(?=^.{4,253}$)(^((?!-)[a-zA-Z0-9-]{1,63}(?<!-)\.)+[a-zA-Z0-9]{2,63}$)")


class ArtifactType(StrEnum):
    CONTAINER = "CONTAINER"
    HELM = "HELM"
    MODEL = "MODEL"
    RESOURCE = "RESOURCE"


class ProvisionedBy(StrEnum):
    SYSTEM = "SYSTEM"
    USER = "USER"


Artifact = Annotated[ArtifactType, BeforeValidator(upper)]
Provisioner = Annotated[ProvisionedBy, BeforeValidator(upper)]


def _hostname(value: str) -> str:
    if "\n" in value or not HOSTNAME.match(value):
        raise ValueError(f"Invalid hostname: Must conform to regex {HOSTNAME.pattern}")
    return value


Hostname = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_hostname)]
Tag = Annotated[str, StringConstraints(max_length=128, pattern=TAG_PATTERN)]


def ordered_artifacts(types: Any) -> list[ArtifactType]:
    """A set of artifact types, rendered in the enum's order."""
    wanted = {ArtifactType(t) for t in types}
    return [t for t in ArtifactType if t in wanted]


def _comma_list(value: Any) -> Any:
    """Query form: ``CONTAINER,HELM`` (repeated parameters are joined with commas before)."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        return parts or None
    return value


class AddRegistryCredentialRequest(ApiModel):
    registryHostname: Hostname
    secret: Secret
    artifactTypes: Annotated[list[Artifact], Field(min_length=1)]
    tags: Annotated[list[Tag], Field(max_length=64)] | None = None
    description: Annotated[str, StringConstraints(max_length=256)] | None = None

    @field_validator("artifactTypes")
    @classmethod
    def _as_set(cls, value: list[ArtifactType]) -> list[ArtifactType]:
        return ordered_artifacts(value)


class UpdateRegistryCredentialRequest(ApiModel):
    """Either may be given; ``artifactTypeEnums`` are *added* to the credential's types."""

    secret: Secret | None = None
    artifactTypeEnums: list[Artifact] | None = None


class RegistryListQuery(ApiModel):
    artifactType: Annotated[list[Artifact] | None, BeforeValidator(_comma_list)] = Field(
        default=None, description="comma-separated: CONTAINER,HELM,MODEL,RESOURCE (default all)"
    )
    provisionedBy: Annotated[list[Provisioner] | None, BeforeValidator(_comma_list)] = Field(
        default=None, description="comma-separated: SYSTEM,USER (default both)"
    )


class RegistryCredentialDetailsDto(ApiModel):
    registryCredentialId: str
    ncaId: str
    registryCredentialName: str
    registryName: str
    registryHostname: str
    artifactTypes: list[ArtifactType]
    tags: list[str] | None = None
    description: str | None = None
    provisionedBy: ProvisionedBy
    lastUpdatedAt: str
    createdAt: str


class RegistryCredentialDetailsResponse(ApiModel):
    registryCredential: RegistryCredentialDetailsDto


class ListRegistryCredentialDetailsResponse(ApiModel):
    registryCredentials: list[RegistryCredentialDetailsDto]


class RecognizedRegistry(ApiModel):
    name: str
    hostname: str


class RecognizedRegistriesResponse(ApiModel):
    recognizedRegistries: dict[ArtifactType, list[RecognizedRegistry]]
