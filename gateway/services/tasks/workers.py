"""Which task workers may attach, and whose tasks they may run: ``authorize_task_worker``.

Two credentials open the Tasks stream:

* a **JWT carrying** ``cluster-management`` (the default admin token does): the operator's own
  worker, trusted with the tasks of every account, on the cluster it names (if any);
* a **cluster credential** (``nvcc-…``, issued by SIS): the worker runs tasks of the cluster's
  account and of its ``authorizedNCAIds`` only, as the cluster (a declared ``cluster_id`` must be
  the credential's own), on a GPU / instance type the cluster offers. Deleting the cluster revokes
  the credential and ends the stream (``TaskScheduler.disconnect``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cext.hotpath import KIND_JWT
from gateway.auth import cluster_credentials
from gateway.auth.authenticator import Authenticator
from gateway.problems import GatewayError
from gateway.services.clusters.offers import validate_gpu
from gateway.services.clusters.registry import ClusterRegistry
from invoker.errors import WorkerRejected
from protos.cfgate.worker.v1 import worker_pb2 as pb

TASK_WORKER_SCOPE = "cluster-management"


@dataclass(frozen=True, slots=True)
class TaskWorkerGrant:
    subject: str
    # Accounts whose tasks the worker may run; None: every account.
    nca_ids: frozenset[str] | None
    # The cluster the worker belongs to (matched against a task's gpuSpecification.clusters).
    cluster_id: str


async def authorize_task_worker(
    authenticator: Authenticator, credential: str, hello: pb.TaskHello, clusters: ClusterRegistry | None = None
) -> TaskWorkerGrant:
    """Raise ``WorkerRejected`` unless ``credential`` may attach a task worker."""
    if clusters is not None and cluster_credentials.looks_like(credential):
        return await _cluster_task_worker(clusters, credential, hello)
    try:
        principal = await authenticator.authenticate(credential.encode())
    except GatewayError:
        raise WorkerRejected("invalid credential", unauthenticated=True) from None
    if principal.kind != KIND_JWT or TASK_WORKER_SCOPE not in principal.authorities:
        raise WorkerRejected(f"a task worker needs a token with the '{TASK_WORKER_SCOPE}' scope")
    return TaskWorkerGrant(principal.subject, None, hello.cluster_id)


async def _cluster_task_worker(clusters: ClusterRegistry, credential: str, hello: pb.TaskHello) -> TaskWorkerGrant:
    cluster = await clusters.by_credential(credential)
    if cluster is None:
        raise WorkerRejected("invalid or revoked cluster credential", unauthenticated=True)
    if hello.cluster_id and hello.cluster_id.lower() != cluster.cluster_id:
        raise WorkerRejected(f"the credential is not one of cluster '{hello.cluster_id}'", unauthenticated=True)
    try:
        validate_gpu(hello.gpu, hello.instance_type or None, [cluster], any_registered=True)
    except GatewayError as exc:
        raise WorkerRejected(f"cluster '{cluster.name}': {exc.detail}") from None
    accounts = frozenset([cluster.nca_id, *cluster.authorized_nca_ids])
    return TaskWorkerGrant(f"cluster:{cluster.cluster_id}", accounts, cluster.cluster_id)
