"""DTOs of function sharing (``/v2/nvcf/authorizations``) and of secret updates (``/v2/nvcf/secrets``).

Names follow NVCF's ``rest/azp/dto`` (``AuthorizedPartiesRequest``, ``PatchAuthorizedPartyRequest``,
``AuthorizedPartiesResponse``, ``ListAuthorizedPartiesResponse``, ``AuthorizedPartiesByFunctionDto``,
``AuthorizedPartyDto``) and ``rest/secret/dto`` (``UpdateFunctionSecretsRequest``,
``UpdateTelemetrySecretRequest``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from gateway.api.models import ApiModel
from gateway.services.functions.models import Secret

# No NUL character: no account or client can have one (PostgreSQL text cannot hold it).
NcaId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
ClientId = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00]*$")]


class AuthorizedParty(ApiModel):
    """An account allowed to see and invoke a function (``clientId`` is deprecated in NVCF)."""

    ncaId: NcaId
    clientId: ClientId | None = None


class AuthorizedPartiesRequest(ApiModel):
    authorizedParties: Annotated[list[AuthorizedParty], Field(min_length=1)]


class PatchAuthorizedPartyRequest(ApiModel):
    authorizedParty: AuthorizedParty


class AuthorizedPartiesDto(ApiModel):
    """``AuthorizedPartiesByFunctionDto``: ``versionId`` only on version-level answers."""

    id: str
    ncaId: str
    versionId: str | None = None
    authorizedParties: list[AuthorizedParty] | None = None


class AuthorizedPartiesResponse(ApiModel):
    function: AuthorizedPartiesDto


class ListAuthorizedPartiesResponse(ApiModel):
    functions: list[AuthorizedPartiesDto]


class UpdateFunctionSecretsRequest(ApiModel):
    # Missing or empty is NVCF's 400 "Missing secrets in the payload", raised by the handler.
    secrets: list[Secret] | None = None


class UpdateTelemetrySecretRequest(ApiModel):
    secret: Secret
