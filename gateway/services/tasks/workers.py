"""Which task workers may attach, and whose tasks they may run: ``authorize_task_worker``.

For now a task worker presents a JWT carrying ``cluster-management`` (the default admin token
does): the operator's own worker, trusted with the tasks of every account. SIS cluster credentials
join here: the integrator extends this one function to accept them and to narrow ``nca_ids`` to
the cluster's authorized accounts and ``cluster_id`` to the cluster's own id.
"""

from __future__ import annotations

from dataclasses import dataclass

from cext.hotpath import KIND_JWT
from gateway.auth.authenticator import Authenticator
from gateway.problems import GatewayError
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


async def authorize_task_worker(authenticator: Authenticator, credential: str, hello: pb.TaskHello) -> TaskWorkerGrant:
    """Raise ``WorkerRejected`` unless ``credential`` may attach a task worker."""
    try:
        principal = await authenticator.authenticate(credential.encode())
    except GatewayError:
        raise WorkerRejected("invalid credential", unauthenticated=True) from None
    if principal.kind != KIND_JWT or TASK_WORKER_SCOPE not in principal.authorities:
        raise WorkerRejected(f"a task worker needs a token with the '{TASK_WORKER_SCOPE}' scope")
    return TaskWorkerGrant(principal.subject, None, hello.cluster_id)
