"""``GET /v2/nvcf/clusterGroups``: the cluster groups (and their GPUs and instance types) an account may deploy to.

JWT-only scope ``list_cluster_groups`` (NVCF's ``ClusterGroupController``). The shape is NVCF's
``IcmsStubService.ClusterGroupsResponse``: ``{"clusterGroups": [{id, name, ncaId, authorizedNcaIds,
gpus: [{name, instanceTypes: [{name, description, default}]}], clusters: [{id, name, k8sVersion}]}]}``.

The groups come from a ``ClusterDirectory`` held on ``Runtime.clusters``: the SIS registry's
``RegistryClusterDirectory`` (``gateway.services.clusters.offers``); with no cluster registered the
answer is ``{"clusterGroups": []}``. ``EmptyClusterDirectory`` knows no clusters at all.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import Field

from gateway.api import ApiModel, Call, Endpoint

SCOPES = ("list_cluster_groups",)


class InstanceTypeDto(ApiModel):
    name: str
    description: str | None = None
    default: bool = Field(default=False, description="the GPU's default instance type")


class GpuDto(ApiModel):
    name: str
    instanceTypes: list[InstanceTypeDto] = Field(default_factory=list)


class ClusterDto(ApiModel):
    id: str
    name: str
    k8sVersion: str | None = None


class ClusterGroupDto(ApiModel):
    id: str
    name: str
    ncaId: str
    authorizedNcaIds: list[str] = Field(default_factory=list)
    gpus: list[GpuDto] = Field(default_factory=list)
    clusters: list[ClusterDto] = Field(default_factory=list)


class ClusterGroupsResponse(ApiModel):
    clusterGroups: list[ClusterGroupDto]


@runtime_checkable
class ClusterDirectory(Protocol):
    """Where the control plane learns which cluster groups exist (the SIS registry)."""

    async def cluster_groups(self, nca_id: str) -> list[ClusterGroupDto]:
        """The groups ``nca_id`` may deploy to: its own and those that authorize it."""
        ...


class EmptyClusterDirectory:
    """No cluster registry yet: no cluster groups."""

    async def cluster_groups(self, nca_id: str) -> list[ClusterGroupDto]:
        return []


async def list_cluster_groups(call: Call) -> ClusterGroupsResponse:
    return ClusterGroupsResponse(clusterGroups=await call.runtime.clusters.cluster_groups(call.nca_id))


ENDPOINTS = [
    Endpoint(
        "GET", "/v2/nvcf/clusterGroups", list_cluster_groups, "List the cluster groups the account can deploy to",
        SCOPES, jwt_only=True, response=ClusterGroupsResponse, tag="clusterGroups",
    ),
]  # fmt: skip
