"""The gRPC worker endpoint's authority: who may serve whose functions and run whose tasks.

One table, ``WORKER_MATRIX``: worker-endpoint operation × credential (seen from the account that
owns the workload) → the gRPC status the worker gets and whether the workload reaches it. The
authorizers (``gateway.invocation.workers``, ``gateway.services.tasks.workers``) implement it;
``tests/sis/test_worker_authorization_matrix.py`` drives real ``Register`` calls and task streams
and derives every expectation from this table. In prose:

* **Operator** — a JWT of the gateway's own issuer whose subject is the bootstrap admin client
  (what ``POST /v1/admin/keys`` mints; ``gateway.auth.authority.is_operator`` names the same
  principal). Its task workers are the installation's own capacity and run tasks of every
  account. Its function workers serve the operator's own account only: placing another
  account's function is that account's choice.
* **Account admin JWT** (any other JWT whose subject maps to an account, e.g. through a trusted
  issuer): function workers (scope ``deploy_function``) and task workers (scope
  ``cluster-management``) of its own account only. A JWT whose subject maps to no account is
  refused (PERMISSION_DENIED).
* **API key** with ``deploy_function``: function workers of its own account; never a task worker.
* **Cluster credential** (``nvcc-…``): serves a function version or runs a task only where the SIS
  placement rule lets its cluster run it (``gateway.services.clusters.placement``): the cluster's
  own account when the deployment / task targets the cluster's GPU, instance type and (if named)
  the cluster; another account only when that account's workload names the cluster by id **and**
  the cluster's ``authorizedNCAIds`` lists that account. ``authorizedNCAIds`` alone places nothing.
* Unknown, malformed, deleted or revoked credentials are UNAUTHENTICATED.

Refusals are data (``WorkerRefusal``); ``refuse`` turns one into the invoker's ``WorkerRejected``
with the status the table promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

import jwt

from cext.hotpath import KIND_JWT, Principal
from invoker.errors import WorkerRejected


class Operation(StrEnum):
    REGISTER = "register"  # gRPC Register for a function version (then its Work stream)
    TASK_STREAM = "task-stream"  # gRPC Tasks: attach, then be assigned a queued task


class Credential(StrEnum):
    """A worker's credential, relative to the account that owns the function version or task."""

    OPERATOR_JWT = "operator-jwt"  # the local issuer's bootstrap admin (owner is another account)
    ADMIN_JWT_OWN = "admin-jwt-own"  # the owner's admin JWT (a trusted issuer's)
    ADMIN_JWT_OTHER = "admin-jwt-other"  # another account's admin JWT
    UNMAPPED_JWT = "unmapped-jwt"  # a trusted issuer's JWT whose subject maps to no account
    API_KEY_OWN = "api-key-own"  # the owner's API key with deploy_function
    API_KEY_OTHER = "api-key-other"  # another account's API key with deploy_function
    API_KEY_REVOKED = "api-key-revoked"  # the owner's key, deleted
    CLUSTER_OWN = "cluster-own"  # the owner's cluster; the workload targets its GPU
    CLUSTER_OWN_UNTARGETED = "cluster-own-untargeted"  # the owner's cluster; the workload names another cluster
    CLUSTER_OTHER_OFFERED = "cluster-other-offered"  # authorizedNCAIds lists the owner, the owner never named it
    CLUSTER_OTHER_CONSENTED = "cluster-other-consented"  # offered, and the workload names its clusterId
    CLUSTER_OTHER_UNOFFERED = (
        "cluster-other-unoffered"  # the workload names it, authorizedNCAIds does not list the owner
    )
    CLUSTER_REVOKED = "cluster-revoked"  # the owner's cluster, deleted


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # the grpc.StatusCode name of Register / of opening the task stream
    serves: bool  # the owner's invocation / task reaches this worker


SERVES = Outcome("OK", True)
ATTACHES_ONLY = Outcome("OK", False)  # a task stream opens, but never gets the owner's task
DENIED = Outcome("PERMISSION_DENIED", False)
UNAUTHENTICATED = Outcome("UNAUTHENTICATED", False)

WORKER_MATRIX: Mapping[Operation, Mapping[Credential, Outcome]] = {
    Operation.REGISTER: {
        Credential.OPERATOR_JWT: DENIED,
        Credential.ADMIN_JWT_OWN: SERVES,
        Credential.ADMIN_JWT_OTHER: DENIED,
        Credential.UNMAPPED_JWT: DENIED,
        Credential.API_KEY_OWN: SERVES,
        Credential.API_KEY_OTHER: DENIED,
        Credential.API_KEY_REVOKED: UNAUTHENTICATED,
        Credential.CLUSTER_OWN: SERVES,
        Credential.CLUSTER_OWN_UNTARGETED: DENIED,
        Credential.CLUSTER_OTHER_OFFERED: DENIED,
        Credential.CLUSTER_OTHER_CONSENTED: SERVES,
        Credential.CLUSTER_OTHER_UNOFFERED: DENIED,
        Credential.CLUSTER_REVOKED: UNAUTHENTICATED,
    },
    Operation.TASK_STREAM: {
        Credential.OPERATOR_JWT: SERVES,
        Credential.ADMIN_JWT_OWN: SERVES,
        Credential.ADMIN_JWT_OTHER: ATTACHES_ONLY,
        Credential.UNMAPPED_JWT: DENIED,
        Credential.API_KEY_OWN: DENIED,
        Credential.API_KEY_OTHER: DENIED,
        Credential.API_KEY_REVOKED: UNAUTHENTICATED,
        Credential.CLUSTER_OWN: SERVES,
        Credential.CLUSTER_OWN_UNTARGETED: ATTACHES_ONLY,
        Credential.CLUSTER_OTHER_OFFERED: ATTACHES_ONLY,
        Credential.CLUSTER_OTHER_CONSENTED: SERVES,
        Credential.CLUSTER_OTHER_UNOFFERED: ATTACHES_ONLY,
        Credential.CLUSTER_REVOKED: UNAUTHENTICATED,
    },
}


class WorkerRefusal(Enum):
    """Why a worker was refused; ``UNAUTHENTICATING`` ones are UNAUTHENTICATED, the rest PERMISSION_DENIED."""

    INVALID = "invalid"  # unknown, malformed, expired, deleted or revoked credential
    WRONG_CLUSTER = "wrong-cluster"  # the declared cluster is not the credential's
    SCOPE = "scope"  # the credential lacks the operation's scope (or is an API key on the task stream)
    NO_ACCOUNT = "no-account"  # a valid JWT whose subject maps to no account
    NOT_VISIBLE = "not-visible"  # another account's function (no consent), or no such function
    NOT_DEPLOYED = "not-deployed"  # no deployed version to serve
    NOT_TARGETED = "not-targeted"  # the deployment does not place the version on this cluster / GPU
    FOREIGN = "foreign"  # a JWT worker declaring another account's cluster


UNAUTHENTICATING = frozenset({WorkerRefusal.INVALID, WorkerRefusal.WRONG_CLUSTER})


def refuse(refusal: WorkerRefusal, message: str) -> WorkerRejected:
    return WorkerRejected(message, unauthenticated=refusal in UNAUTHENTICATING)


@dataclass(frozen=True, slots=True)
class Operator:
    """Who the operator is: the gateway's own issuer and its bootstrap admin client."""

    issuer: str
    admin_client_id: str

    def is_operator(self, principal: Principal, credential: str) -> bool:
        if principal.kind != KIND_JWT or principal.subject != self.admin_client_id:
            return False
        # The signature was verified by the authenticator; only the issuer is read here.
        try:
            claims = jwt.decode(credential, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == self.issuer)


class WorkerKind(Enum):
    """A JWT or API-key worker credential's row, before the account checks."""

    OPERATOR = "operator"
    ACCOUNT_ADMIN = "account-admin"
    UNMAPPED = "unmapped"  # a JWT that maps to no account
    API_KEY = "api-key"


def worker_kind(principal: Principal, credential: str, operator: Operator | None) -> WorkerKind:
    if principal.kind != KIND_JWT:
        return WorkerKind.API_KEY
    if operator is not None and operator.is_operator(principal, credential):
        return WorkerKind.OPERATOR
    return WorkerKind.ACCOUNT_ADMIN if principal.nca_id else WorkerKind.UNMAPPED
