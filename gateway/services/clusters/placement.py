"""Where a workload may run: which registered clusters a deployment specification or task targets.

A *workload* is one ``GpuSpecification`` of a deployment or the ``gpuSpecification`` of an NVCT
task; it belongs to an account (its owner). NVCF lets the owner say where it runs
(``GpuSpecificationDto``: ``gpu``, ``instanceType``, ``clusters``, legacy ``backend``; ICMS
clusters carry ``authorizedNCAIds``; reference §4.5, §10, §11). The rule, in full:

* **Own clusters.** A cluster of the owner's account may run the workload when it offers the
  workload's ``gpu`` / ``instanceType`` and, if the workload names ``clusters`` or a
  ``backend``, it is one of them: ``clusters`` entries match its ``clusterId`` or its
  ``clusterName``, ``backend`` its ``clusterGroupName`` or ``clusterGroupId``.
* **Another account's cluster** may run it only with the consent of **both** accounts: the
  cluster's owner lists the workload's owner in ``authorizedNCAIds`` (the offer), **and** the
  workload names that cluster by ``clusterId`` or its group by ``clusterGroupId`` (the
  acceptance). Names do not count across accounts — any account may register a cluster called
  ``rack-4``; ids are unique and shown to the offered account by ``GET /v2/nvcf/clusterGroups``.
  ``authorizedNCAIds`` alone never places anything: the cluster owner cannot take another
  account's work by its own say-so.
* **GPU validation** (deployments and tasks are checked when made, ``check_workload``): the
  clusters *usable* by the workload are the owner's own clusters plus the other accounts'
  clusters it consented to as above. While none exists, every GPU name is accepted (the
  embedded default, ``cfgate demo``, and every account that runs its own workers without SIS).
  Otherwise the workload must be runnable on one of them, else 400. So one account's clusters
  never change what another may deploy.

Workers apply the same rule when they attach (``gateway.invocation.workers``,
``gateway.services.tasks.workers``): a cluster's worker serves a workload only when that cluster
may run it. Names match case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.problems import BadRequest
from gateway.services.clusters.offers import group_id, offered, validate_gpu
from gateway.services.functions.deployment_models import GpuSpecification
from gateway.store.clusters import Cluster, ClusterRepository


@dataclass(frozen=True, slots=True)
class Workload:
    """What a workload asks for, from a deployment specification or a task's gpuSpecification."""

    nca_id: str
    gpu: str
    instance_type: str | None
    clusters: frozenset[str]  # as given, lower case: cluster ids or names
    backend: str | None  # lower case: a cluster group name or id

    @classmethod
    def of(cls, nca_id: str, spec: Mapping[str, Any]) -> Workload:
        backend = spec.get("backend")
        return cls(
            nca_id=nca_id,
            gpu=str(spec.get("gpu") or ""),
            instance_type=str(spec["instanceType"]) if spec.get("instanceType") else None,
            clusters=frozenset(str(c).lower() for c in spec.get("clusters") or ()),
            backend=str(backend).lower() if backend else None,
        )

    @property
    def names_placement(self) -> bool:
        return bool(self.clusters) or self.backend is not None


def consented(cluster: Cluster, workload: Workload) -> bool:
    """May ``cluster`` run work of the workload's account at all, and does the workload allow it?"""
    if cluster.nca_id == workload.nca_id:
        if not workload.names_placement:
            return True
        return _named_by_id(cluster, workload) or _named_by_name(cluster, workload)
    return workload.nca_id in cluster.authorized_nca_ids and _named_by_id(cluster, workload)


def runs(cluster: Cluster, workload: Workload) -> bool:
    """``consented`` and the cluster offers the workload's GPU and instance type."""
    if not consented(cluster, workload):
        return False
    types = offered([cluster]).get(workload.gpu.lower())
    return types is not None and (workload.instance_type is None or workload.instance_type.lower() in types)


def usable(clusters: Iterable[Cluster], workload: Workload) -> list[Cluster]:
    """The clusters whose GPUs count for the workload: its account's own and the consented others."""
    return [
        c
        for c in clusters
        if c.nca_id == workload.nca_id or (workload.nca_id in c.authorized_nca_ids and _named_by_id(c, workload))
    ]


def check_workload(clusters: Sequence[Cluster], workload: Workload) -> None:
    """400 unless a usable cluster may run the workload; nothing usable: every GPU is accepted."""
    candidates = usable(clusters, workload)
    if not candidates:
        return
    targeted = [c for c in candidates if consented(c, workload)]
    if not targeted:
        named = ", ".join(sorted(workload.clusters)) or workload.backend or ""
        raise BadRequest(f"None of the clusters named ({named}) is available to the account")
    validate_gpu(workload.gpu, workload.instance_type, targeted, any_registered=True)


def _named_by_id(cluster: Cluster, workload: Workload) -> bool:
    return cluster.cluster_id in workload.clusters or workload.backend == group_id(cluster.nca_id, cluster.group_name)


def _named_by_name(cluster: Cluster, workload: Workload) -> bool:
    return cluster.name.lower() in workload.clusters or workload.backend == cluster.group_name.lower()


class ClusterGpuValidator:
    """``GpuValidator`` for deployments: ``check_workload`` on each specification."""

    def __init__(self, clusters: ClusterRepository) -> None:
        self._clusters = clusters

    async def __call__(self, nca_id: str, specs: Sequence[GpuSpecification]) -> None:
        every = await self._clusters.all()
        for spec in specs:
            check_workload(every, Workload.of(nca_id, spec.model_dump()))


async def check_task_gpu(clusters: ClusterRepository, nca_id: str, spec: Mapping[str, Any]) -> None:
    """``check_workload`` for an NVCT task's ``gpuSpecification`` (``Runtime.task_gpu_validator``)."""
    check_workload(await clusters.all(), Workload.of(nca_id, spec))
