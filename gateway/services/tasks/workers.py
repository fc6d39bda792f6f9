"""Which task workers may attach, and whose tasks they may run: ``authorize_task_worker``.

A task carries secrets (``secrets_json``, opened for the worker that runs it), so a task runs
only where its owner placed it (``gateway.auth.worker_authority`` has the table):

* the **operator's** worker — a JWT of the gateway's own issuer for the bootstrap admin client
  (``POST /v1/admin/keys``), carrying ``cluster-management`` — runs tasks of every account: it is
  the installation's own capacity, what a task without ``clusters`` asks for;
* an **account admin's** worker — any other JWT carrying ``cluster-management`` whose subject maps
  to an account — runs that account's tasks only. A subject that maps to no account is refused;
* a **cluster credential** (``nvcc-…``, issued by SIS) runs, as that cluster (a declared
  ``cluster_id`` must be its own) and on a GPU / instance type it offers, the tasks the SIS
  placement rule lets it run (``clusters.placement``): tasks of the cluster's account, and tasks of
  an account in its ``authorizedNCAIds`` whose ``gpuSpecification.clusters`` names its
  ``clusterId`` (or ``backend`` its ``clusterGroupId``) — never by ``authorizedNCAIds`` alone.
  Deleting the cluster revokes the credential and ends the stream (``TaskScheduler.disconnect``).

A JWT worker may declare a ``cluster_id`` (matched against a task's ``clusters``) unless it is
the id of a registered cluster of another account: to run as that cluster, present its
credential. API keys never open the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.auth import cluster_credentials
from gateway.auth.authenticator import Authenticator
from gateway.auth.worker_authority import Operator, WorkerKind, WorkerRefusal, refuse, worker_kind
from gateway.problems import GatewayError
from gateway.services.clusters.offers import validate_gpu
from gateway.services.clusters.placement import Workload, consented
from gateway.services.clusters.registry import ClusterRegistry
from gateway.store.clusters import Cluster
from protos.cfgate.worker.v1 import worker_pb2 as pb

TASK_WORKER_SCOPE = "cluster-management"


@dataclass(frozen=True, slots=True)
class TaskWorkerGrant:
    subject: str
    # The account whose tasks the worker runs; None: the operator's worker (every account).
    nca_id: str | None
    # The cluster the worker runs as (matched against a task's gpuSpecification.clusters).
    cluster_id: str
    # The SIS cluster whose credential opened the stream, if one did.
    cluster: Cluster | None = None

    def admits(self, task_nca_id: str, gpu_spec: Mapping[str, Any]) -> bool:
        """May this worker run a task of ``task_nca_id`` placed by ``gpu_spec`` (GPU matched apart)?"""
        if self.cluster is not None:
            return consented(self.cluster, Workload.of(task_nca_id, gpu_spec))
        if self.nca_id is not None and task_nca_id != self.nca_id:
            return False
        clusters = gpu_spec.get("clusters")
        return not clusters or self.cluster_id in clusters


async def authorize_task_worker(
    authenticator: Authenticator,
    credential: str,
    hello: pb.TaskHello,
    clusters: ClusterRegistry | None = None,
    operator: Operator | None = None,
) -> TaskWorkerGrant:
    """Raise ``WorkerRejected`` unless ``credential`` may attach a task worker."""
    if clusters is not None and cluster_credentials.looks_like(credential):
        return await _cluster_task_worker(clusters, credential, hello)
    try:
        principal = await authenticator.authenticate(credential.encode())
    except GatewayError:
        raise refuse(WorkerRefusal.INVALID, "invalid credential") from None
    kind = worker_kind(principal, credential, operator)
    if kind is WorkerKind.API_KEY or TASK_WORKER_SCOPE not in principal.authorities:
        raise refuse(WorkerRefusal.SCOPE, f"a task worker needs a token with the '{TASK_WORKER_SCOPE}' scope")
    if kind is WorkerKind.UNMAPPED:
        raise refuse(WorkerRefusal.NO_ACCOUNT, "the token's subject is not an account's admin client")
    if hello.cluster_id and clusters is not None:
        declared = await clusters.by_id(hello.cluster_id.lower())
        if declared is not None and declared.nca_id != principal.nca_id:
            raise refuse(WorkerRefusal.FOREIGN, f"cluster '{hello.cluster_id}': present its cluster credential")
    return TaskWorkerGrant(
        principal.subject, None if kind is WorkerKind.OPERATOR else principal.nca_id, hello.cluster_id
    )


async def _cluster_task_worker(clusters: ClusterRegistry, credential: str, hello: pb.TaskHello) -> TaskWorkerGrant:
    cluster = await clusters.by_credential(credential)
    if cluster is None:
        raise refuse(WorkerRefusal.INVALID, "invalid or revoked cluster credential")
    if hello.cluster_id and hello.cluster_id.lower() != cluster.cluster_id:
        raise refuse(WorkerRefusal.WRONG_CLUSTER, f"the credential is not one of cluster '{hello.cluster_id}'")
    try:
        validate_gpu(hello.gpu, hello.instance_type or None, [cluster], any_registered=True)
    except GatewayError as exc:
        raise refuse(WorkerRefusal.NOT_TARGETED, f"cluster '{cluster.name}': {exc.detail}") from None
    return TaskWorkerGrant(f"cluster:{cluster.cluster_id}", cluster.nca_id, cluster.cluster_id, cluster)
