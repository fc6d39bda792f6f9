"""What the registered clusters offer: cluster groups, GPUs and instance types.

Feeds ``GET /v2/nvcf/clusterGroups`` (``RegistryClusterDirectory``: the account's own groups
and those of clusters whose ``authorizedNCAIds`` offer them to it, so it can name them) and the
GPU check of deployments and tasks (``validate_gpu``, applied by ``placement.check_workload``
to the clusters usable by the workload's account). Names match case-insensitively.

A cluster group is the set of an account's clusters with the same ``clusterGroupName``; its id is
derived from account and name (``group_id``), so it needs no table and stays stable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from gateway.problems import BadRequest
from gateway.services.functions.cluster_groups import ClusterDto, ClusterGroupDto, GpuDto, InstanceTypeDto
from gateway.store.clusters import Cluster, ClusterRepository

GROUP_NAMESPACE = uuid.UUID("6f1c2f62-5b8e-4d0a-9a57-3c1e0c9b7e21")  # fixed: group ids never change


def group_id(nca_id: str, group_name: str) -> str:
    return str(uuid.uuid5(GROUP_NAMESPACE, f"{nca_id}/{group_name}"))


def offered(clusters: Sequence[Cluster]) -> dict[str, set[str]]:
    """GPU name → instance type names (all lower case) over ``clusters``."""
    offers: dict[str, set[str]] = {}
    for cluster in clusters:
        for gpu in cluster.gpus:
            types = offers.setdefault(str(gpu["name"]).lower(), set())
            types.update(str(t["name"]).lower() for t in gpu.get("instanceTypes") or ())
    return offers


def validate_gpu(gpu: str, instance_type: str | None, clusters: Sequence[Cluster], *, any_registered: bool) -> None:
    """400 unless ``clusters`` (those the workload may use) offer ``gpu`` (and ``instance_type``).

    ``any_registered`` false (no cluster usable by the account): all pass.
    """
    if not any_registered:
        return
    offers = offered(clusters)
    types = offers.get(gpu.lower())
    if types is None:
        known = ", ".join(sorted(offers)) or "none"
        raise BadRequest(f"GPU '{gpu}' is not offered by any cluster available to the account (offered: {known})")
    if instance_type is not None and instance_type.lower() not in types:
        raise BadRequest(
            f"Instance type '{instance_type}' is not offered for GPU '{gpu}' by any cluster available to the account"
        )


class RegistryClusterDirectory:
    """``ClusterDirectory`` for ``GET /v2/nvcf/clusterGroups``: the groups of the usable clusters."""

    def __init__(self, clusters: ClusterRepository) -> None:
        self._clusters = clusters

    async def cluster_groups(self, nca_id: str) -> list[ClusterGroupDto]:
        groups: dict[tuple[str, str], list[Cluster]] = {}
        for cluster in await self._clusters.visible_to(nca_id):
            groups.setdefault((cluster.nca_id, cluster.group_name), []).append(cluster)
        return [_group(owner, name, members) for (owner, name), members in groups.items()]


def _group(owner: str, name: str, members: list[Cluster]) -> ClusterGroupDto:
    authorized: dict[str, None] = {}
    gpus: dict[str, GpuDto] = {}
    for cluster in members:
        authorized.update(dict.fromkeys(cluster.authorized_nca_ids))
        for gpu in cluster.gpus:
            dto = gpus.setdefault(str(gpu["name"]).lower(), GpuDto(name=str(gpu["name"])))
            known = {t.name.lower() for t in dto.instanceTypes}
            for kind in gpu.get("instanceTypes") or ():
                if str(kind["name"]).lower() not in known:
                    dto.instanceTypes.append(InstanceTypeDto.model_validate(kind))
                    known.add(str(kind["name"]).lower())
    return ClusterGroupDto(
        id=group_id(owner, name),
        name=name,
        ncaId=owner,
        authorizedNcaIds=list(authorized),
        gpus=list(gpus.values()),
        clusters=[ClusterDto(id=c.cluster_id, name=c.name) for c in members],
    )
