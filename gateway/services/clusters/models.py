"""SIS request and response bodies (reference §11, §17).

Field names are ICMS's (``clusterName``, ``authorizedNCAIds`` …). Choices where the reference is
silent:

* Names (``clusterName``, ``clusterGroupName``) are 1–64 letters, digits, ``.``, ``_``, ``-``,
  starting and ending with a letter or digit; free strings are bounded (64 for identifiers such
  as ``region``, 1024 for descriptions) and sets hold at most 256 items, duplicates removed.
* ``gpus`` is what the cluster offers, in the shape ``GET /v2/nvcf/clusterGroups`` renders:
  ``[{name, instanceTypes: [{name, description?, default?}]}]``. Every GPU lists at least one
  instance type; GPU names are unique case-insensitively (NVCF matches GPU names so), instance
  types unique within their GPU, and at most one of them is the ``default``.
* ``customAttributes`` and ``clusterConfigurations`` are kept as opaque JSON; ``jwks`` is a JSON
  Web Key Set as object or string. cfgate stores them and returns them; it does not use them.
* PUT is a partial update: any registration field, at least one. ``ncaId``, where sent, must be
  the path's account (it cannot move a cluster).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field, RootModel, StringConstraints, model_validator

from gateway.api.models import ApiModel

NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"

ClusterName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Text = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00]*$")]
Item = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


StringSet = Annotated[list[Item], Field(max_length=256), AfterValidator(_unique)]
IdentSet = Annotated[list[Ident], Field(max_length=256), AfterValidator(_unique)]


class InstanceTypeOffer(ApiModel):
    name: Item
    description: Text | None = None
    default: bool = False


class GpuOffer(ApiModel):
    name: Item
    instanceTypes: Annotated[list[InstanceTypeOffer], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _distinct(self) -> GpuOffer:
        names = [t.name.lower() for t in self.instanceTypes]
        if len(set(names)) != len(names):
            raise ValueError(f"gpu '{self.name}' lists an instance type twice")
        if sum(t.default for t in self.instanceTypes) > 1:
            raise ValueError(f"gpu '{self.name}' has more than one default instance type")
        return self


def _distinct_gpus(gpus: list[GpuOffer]) -> list[GpuOffer]:
    names = [g.name.lower() for g in gpus]
    if len(set(names)) != len(names):
        raise ValueError("a gpu is listed twice")
    return gpus


Gpus = Annotated[list[GpuOffer], Field(max_length=64), AfterValidator(_distinct_gpus)]
OpaqueJson = dict[str, Any] | list[Any]


class ClusterFields(ApiModel):
    """The optional part of a registration, shared by POST and PUT."""

    clusterDescription: Text | None = None
    authorizedNCAIds: IdentSet | None = None
    capabilities: StringSet | None = None
    attributes: StringSet | None = None
    gpus: Gpus | None = None
    oAuthClientId: Item | None = None
    customAttributes: OpaqueJson | None = None
    clusterSource: Ident | None = None
    clusterConfigurations: OpaqueJson | None = None
    jwks: dict[str, Any] | Text | None = None
    oidcIssuer: Item | None = None


class RegisterClusterRequest(ClusterFields):
    clusterName: ClusterName
    clusterGroupName: ClusterName
    ncaId: Ident
    cloudProvider: Ident
    region: Ident
    nvcaVersion: Ident


REQUIRED_FIELDS = ("clusterName", "clusterGroupName", "ncaId", "cloudProvider", "region", "nvcaVersion")


class UpdateClusterRequest(ClusterFields):
    clusterName: ClusterName | None = None
    clusterGroupName: ClusterName | None = None
    ncaId: Ident | None = None
    cloudProvider: Ident | None = None
    region: Ident | None = None
    nvcaVersion: Ident | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateClusterRequest:
        if not self.model_fields_set - {"ncaId"}:
            raise ValueError("Empty update cluster request: at least one field should be provided")
        for name in REQUIRED_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed")
        return self


def _key_set(value: dict[str, Any] | str) -> dict[str, Any] | str:
    document: Any = value
    if isinstance(value, str):
        try:
            document = json.loads(value)
        except ValueError:
            raise ValueError("jwks is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise ValueError("jwks must be a JSON Web Key Set: an object with a non-empty 'keys' array")
    if not all(isinstance(key, dict) and isinstance(key.get("kty"), str) for key in document["keys"]):
        raise ValueError("every key of the jwks needs a 'kty'")
    return value


class RotateJwksRequest(ApiModel):
    """``PUT /v1/nvca/clusters/{clusterId}/jwks`` (``nvcf-cli cluster rotate``): the cluster's new
    key set replaces the old one (as an object or its JSON text); ``oidcIssuer`` may move with it."""

    jwks: Annotated[dict[str, Any] | Annotated[str, StringConstraints(max_length=65536)], AfterValidator(_key_set)]
    oidcIssuer: Item | None = None


class RegisterClusterResponse(ApiModel):
    """Flat, as nvcf-cli reads it (§17), plus the credential — shown this once, never again."""

    clusterId: str
    clusterGroupId: str
    clusterName: str
    clusterGroupName: str
    ncaId: str
    clusterCredential: str = Field(description="the cluster's worker credential (nvcc-…); returned only here")


class ClusterDto(ClusterFields):
    clusterId: str
    clusterName: str
    clusterGroupId: str
    clusterGroupName: str
    ncaId: str
    cloudProvider: str
    region: str
    nvcaVersion: str
    createdAt: str
    lastUpdatedAt: str


class ClusterList(RootModel[list[ClusterDto]]):
    """``GET …/clusters`` is a bare JSON array (§17)."""


class ClusterVersionDto(ApiModel):
    clusterId: str
    clusterName: str
    nvcaVersion: str


class ClusterVersionList(RootModel[list[ClusterVersionDto]]):
    """``GET …/clusterVersions``: each cluster of the account with its NVCA version, as an array."""
