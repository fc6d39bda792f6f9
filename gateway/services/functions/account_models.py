"""Account and client DTOs (NVCF ``rest/account/dto``; nvcf-cli ``internal/client`` account types).

Rules from ``CreateAccountRequest``/``AccountUpdateRequest``: name 4–36 characters matching
``^[a-z0-9A-Z][a-z0-9A-Z\\-_]*$``; on create every limit is ≥ 1 and telemetries/registry
credentials ≤ 25; on update limits are ≥ 0 and those two ≤ 50, and at least one field is needed.
Registry credentials given at provisioning: one per artifact type, a string secret value that is
base64 of ``username:password``.
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from gateway.api.models import ApiModel

ACCOUNT_NAME_PATTERN = r"^[a-z0-9A-Z][a-z0-9A-Z\-_]*$"
SECRET_NAME_PATTERN = r"^[a-z0-9A-Z][a-z0-9A-Z_.\-]*$"
# NVCF's HOSTNAME_REGEX (lookarounds: checked with Python's re, not in the schema pattern).
HOSTNAME = re.compile(r"(?=^.{4,253}$)(^((?!-)[a-zA-Z0-9-]{1,63}(?<!-)\.)+[a-zA-Z0-9]{2,63}$)")
MAX_INT = 2147483647
CREATE_MAX_TELEMETRIES = 25
CREATE_MAX_REGISTRY_CREDENTIALS = 25
UPDATE_MAX_TELEMETRIES = 50
UPDATE_MAX_REGISTRY_CREDENTIALS = 50

AccountName = Annotated[str, StringConstraints(min_length=4, max_length=36, pattern=ACCOUNT_NAME_PATTERN)]
# A JWT subject: printable ASCII without spaces, at most the column's 128 characters.
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class ArtifactType(StrEnum):
    CONTAINER = "CONTAINER"
    HELM = "HELM"
    MODEL = "MODEL"
    RESOURCE = "RESOURCE"


class RegistrySecret(ApiModel):
    name: Annotated[str, StringConstraints(min_length=1, max_length=48, pattern=SECRET_NAME_PATTERN)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=32768)]

    @field_validator("value")
    @classmethod
    def _user_password(cls, value: str) -> str:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("must be base64 of 'username:password'") from None
        if ":" not in decoded:
            raise ValueError("must be base64 of 'username:password'")
        return value


class RegistryCredential(ApiModel):
    registryHostname: Annotated[str, StringConstraints(max_length=255)]
    secret: RegistrySecret
    artifactTypes: Annotated[list[ArtifactType], Field(min_length=1)]
    tags: list[Annotated[str, StringConstraints(max_length=128)]] | None = None
    description: Annotated[str, StringConstraints(max_length=256)] | None = None

    @field_validator("registryHostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not HOSTNAME.match(value):
            raise ValueError("must be a registry hostname such as nvcr.io")
        return value


# The issuer whose tokens carry the client id as ``sub`` (cfgate: omitted → the gateway's own).
ClientIssuer = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class CreateAccountRequest(ApiModel):
    name: AccountName
    adminClientId: ClientId | None = None
    adminClientIssuer: ClientIssuer | None = None
    registryCredentials: list[RegistryCredential] | None = None
    maxFunctionsAllowed: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None
    maxTasksAllowed: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None
    maxTelemetriesAllowed: Annotated[int, Field(ge=1, le=CREATE_MAX_TELEMETRIES)] | None = None
    maxRegistryCredentialsAllowed: Annotated[int, Field(ge=1, le=CREATE_MAX_REGISTRY_CREDENTIALS)] | None = None

    @field_validator("adminClientId", mode="before")
    @classmethod
    def _blank_client(cls, value: object) -> object:
        return _blank_to_none(value)

    @model_validator(mode="after")
    def _one_per_artifact_type(self) -> CreateAccountRequest:
        seen: set[str] = set()
        duplicates: set[str] = set()
        for credential in self.registryCredentials or []:
            for kind in credential.artifactTypes:
                (duplicates if kind.value in seen else seen).add(kind.value)
        if duplicates:
            raise ValueError(
                f"Invalid request: Multiple registry credential(s) with same artifact type(s) '{sorted(duplicates)}' "
                "not allowed during account provisioning"
            )
        return self


class AccountUpdateRequest(ApiModel):
    name: AccountName | None = None
    maxFunctionsAllowed: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    maxTasksAllowed: Annotated[int, Field(ge=0, le=MAX_INT)] | None = None
    maxTelemetriesAllowed: Annotated[int, Field(ge=0, le=UPDATE_MAX_TELEMETRIES)] | None = None
    maxRegistryCredentialsAllowed: Annotated[int, Field(ge=0, le=UPDATE_MAX_REGISTRY_CREDENTIALS)] | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _blank_name(cls, value: object) -> object:
        return _blank_to_none(value)

    @model_validator(mode="after")
    def _something(self) -> AccountUpdateRequest:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("Invalid request: Either name, credential fields or limits should be specified")
        return self


class PatchAccountRequest(ApiModel):
    """Body of ``…/clients/associate`` and ``…/clients/disassociate``."""

    adminClientId: ClientId
    adminClientIssuer: ClientIssuer | None = None


class AccountDto(ApiModel):
    ncaId: str
    adminClientIds: list[str]
    name: str
    maxFunctionsAllowed: int
    maxTasksAllowed: int
    maxTelemetriesAllowed: int
    maxRegistryCredentialsAllowed: int
    lastUpdatedAt: str | None = None


class AccountResponse(ApiModel):
    """Create, update, associate and disassociate answer ``{"account": AccountDto}``."""

    account: AccountDto


class ListAccountsResponse(ApiModel):
    """``GET /v2/nvcf/accounts``: nvcf-cli decodes the list from ``cloudAccounts``."""

    cloudAccounts: list[AccountDto]


class RegistrySecretName(ApiModel):
    name: str


class AccountRegistryCredentialDto(ApiModel):
    """A registry credential given at provisioning, as shown back: never its secret value."""

    registryHostname: str
    artifactTypes: list[str]
    secret: RegistrySecretName
    provisionedBy: str = "SYSTEM"
    tags: list[str] | None = None
    description: str | None = None


class AccountDetailsDto(ApiModel):
    ncaId: str
    clientIds: list[str]
    name: str
    registryCredentials: list[AccountRegistryCredentialDto] | None = None
    maxFunctionsAllowed: int
    maxTasksAllowed: int
    maxTelemetriesAllowed: int
    maxRegistryCredentialsAllowed: int
    currentNumberFunctions: int
    lastUpdatedAt: str | None = None


class AccountDetailsResponse(ApiModel):
    account: AccountDetailsDto


class ClientDto(ApiModel):
    clientId: str
    ncaId: str
    name: str


class ClientResponse(ApiModel):
    client: ClientDto
