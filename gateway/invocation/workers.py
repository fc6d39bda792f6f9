"""Who may attach a worker to which function version (the invoker's ``WorkerAuthorizer``).

The rules are ``gateway.auth.worker_authority``'s table (``Operation.REGISTER``). A worker presents:

* an admin JWT or an API key carrying ``deploy_function``, of the function's own account (the
  operator's JWT included: it serves the operator's account only). A JWT whose subject maps to
  no account is refused. Its ``gpu`` and ``instance_type`` are taken as it declares them;
* a **cluster credential** (``nvcc-…``, issued by SIS when the cluster was registered): it serves
  a version only when the SIS placement rule lets its cluster run one of the version's
  deployment specifications (``gateway.services.clusters.placement``): the cluster's own account
  when the specification's ``gpu``/``instanceType`` are offered by the cluster and its
  ``clusters``/``backend``, if given, name it; another account only when that account's
  specification names the cluster's ``clusterId`` (or ``backend`` its ``clusterGroupId``) **and**
  the cluster's ``authorizedNCAIds`` lists it. The worker runs on that specification's GPU and
  instance type (a declared ``gpu`` / ``instance_type`` must be one of a matching
  specification); without a version named, the newest deployed version the cluster may serve.
  A declared ``cluster_id`` must be the credential's cluster. The grant's metadata carries
  ``clusterId`` (and ``clusterName``), by which deleting the cluster finds and disconnects its
  sessions. An unknown, malformed or revoked cluster credential is UNAUTHENTICATED.

The grant carries the deployment's ``maxRequestConcurrency`` for the worker (its specification's;
for a JWT or key worker the one matching its declared GPU / instance type, else the largest): the
session never holds more invocations at once, and the worker is told so at Register.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.auth import cluster_credentials
from gateway.auth.authenticator import Authenticator
from gateway.auth.authority import principal_may_use_function
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.auth.worker_authority import Operator, WorkerKind, WorkerRefusal, refuse, worker_kind
from gateway.problems import GatewayError
from gateway.services.clusters.placement import Workload, consented, runs
from gateway.services.clusters.registry import ClusterRegistry
from gateway.services.functions.routing import FunctionRoute, RoutingCache, VersionRoute
from gateway.store.clusters import Cluster
from gateway.store.deployments import DeploymentRepository
from invoker.sessions import WorkerGrant
from protos.cfgate.worker.v1 import worker_pb2 as pb

WORKER_SCOPE = "deploy_function"
CLUSTER_ID_KEY = "clusterId"


class WorkerAuthorizer:
    def __init__(
        self,
        authenticator: Authenticator,
        routes: RoutingCache,
        region: str,
        http_url: str,
        clusters: ClusterRegistry,
        deployments: DeploymentRepository,
        operator: Operator | None = None,
        *,
        gateway_host: str = "",
    ) -> None:
        self._authenticator = authenticator
        self._routes = routes
        self._region = region
        self._http_url = http_url
        self._gateway_host = gateway_host
        self._clusters = clusters
        self._deployments = deployments
        self._operator = operator

    async def __call__(self, credential: str, request: pb.RegisterRequest) -> WorkerGrant:
        if cluster_credentials.looks_like(credential):
            return await self._cluster_worker(credential, request)
        try:
            principal = await self._authenticator.authenticate(credential.encode())
        except GatewayError:
            raise refuse(WorkerRefusal.INVALID, "invalid credential") from None
        if principal.authorities.isdisjoint((WORKER_SCOPE, APIKEY_PREFIX + WORKER_SCOPE)):
            raise refuse(WorkerRefusal.SCOPE, f"credential lacks the '{WORKER_SCOPE}' scope")
        if worker_kind(principal, credential, self._operator) is WorkerKind.UNMAPPED:
            raise refuse(WorkerRefusal.NO_ACCOUNT, "the token's subject is not an account's admin client")
        route = self._routes.get(request.function_id.lower())
        if route is None or route.nca_id != principal.nca_id:
            raise refuse(WorkerRefusal.NOT_VISIBLE, f"unknown function '{request.function_id}'")
        # An API key serves only functions its resources name (gateway.auth.authority).
        if not principal_may_use_function(principal, route, route.function_id, request.version_id or None):
            raise refuse(
                WorkerRefusal.NOT_VISIBLE, f"the credential's resources do not include function '{request.function_id}'"
            )
        metadata = {"gpu": request.gpu, "instanceType": request.instance_type, "backend": request.backend}
        version = _version(route, request)
        deployment = await self._deployments.by_version(version.version_id)
        specs = deployment.specs if deployment is not None else []
        # The specification it runs on (as declared), else the largest bound of the deployment.
        concurrency = _max_request_concurrency([s for s in specs if _declared(request, s)] or specs)
        return self._grant(route, version, request, metadata, concurrency=concurrency)

    async def _cluster_worker(self, credential: str, request: pb.RegisterRequest) -> WorkerGrant:
        cluster = await self._clusters.by_credential(credential)
        if cluster is None:
            raise refuse(WorkerRefusal.INVALID, "invalid or revoked cluster credential")
        if request.cluster_id and request.cluster_id.lower() != cluster.cluster_id:
            raise refuse(WorkerRefusal.WRONG_CLUSTER, f"the credential is not one of cluster '{request.cluster_id}'")
        route = self._routes.get(request.function_id.lower())
        if route is None or (route.nca_id != cluster.nca_id and route.nca_id not in cluster.authorized_nca_ids):
            raise refuse(WorkerRefusal.NOT_VISIBLE, f"unknown function '{request.function_id}'")
        version, spec = await self._placed(cluster, route, request)
        gpu, instance_type = _placement(
            cluster, request.gpu or str(spec["gpu"]), request.instance_type or str(spec["instanceType"])
        )
        metadata = {
            "gpu": gpu,
            "instanceType": instance_type,
            "backend": cluster.group_name,
            CLUSTER_ID_KEY: cluster.cluster_id,
            "clusterName": cluster.name,
        }
        return self._grant(
            route,
            version,
            request,
            metadata,
            location=str(cluster.spec["region"]),
            concurrency=_max_request_concurrency([spec]),
        )

    async def _placed(
        self, cluster: Cluster, route: FunctionRoute, request: pb.RegisterRequest
    ) -> tuple[VersionRoute, Mapping[str, Any]]:
        """The version (as named, else the newest deployed) and the specification placing it on ``cluster``."""
        candidates = [_version(route, request)] if request.version_id else _deployed(route)[::-1]
        if not candidates:
            raise refuse(WorkerRefusal.NOT_DEPLOYED, f"function '{request.function_id}' has no deployed version")
        any_consent = False
        for version in candidates:
            deployment = await self._deployments.by_version(version.version_id)
            for spec in deployment.specs if deployment is not None else ():
                workload = Workload.of(route.nca_id, spec)
                any_consent = any_consent or consented(cluster, workload)
                if runs(cluster, workload) and _declared(request, spec):
                    return version, spec
        if not any_consent and route.nca_id != cluster.nca_id:
            # The owner never placed anything on this cluster: as if the function did not exist.
            raise refuse(WorkerRefusal.NOT_VISIBLE, f"unknown function '{request.function_id}'")
        wanted = "/".join(x for x in (request.gpu, request.instance_type) if x)
        raise refuse(
            WorkerRefusal.NOT_TARGETED,
            f"no deployment specification of function '{request.function_id}' places it on cluster "
            f"'{cluster.name}'" + (f" with '{wanted}'" if wanted else ""),
        )

    def _grant(
        self,
        route: FunctionRoute,
        version: VersionRoute,
        request: pb.RegisterRequest,
        placement: dict[str, str],
        *,
        location: str = "",
        concurrency: int = 0,
    ) -> WorkerGrant:
        metadata = {
            **placement,
            "backend": placement.get("backend") or "cfgate",
            "location": request.location or location,
            "region": self._region,
            "env": "cfgate",
            # Where the worker fetches input assets (their URLs are relative to it), and the Host
            # that reaches the api service there (the URL may be a bare listen address).
            "gatewayUrl": self._http_url,
            "gatewayHost": self._gateway_host,
        }
        return WorkerGrant(
            function_id=route.function_id,
            version_id=version.version_id,
            function_name=version.name,
            nca_id=route.nca_id,
            inference_url=version.inference_url,
            inference_port=version.inference_port,
            metadata={k: v for k, v in metadata.items() if v},
            max_request_concurrency=concurrency,
        )


def _version(route: FunctionRoute, request: pb.RegisterRequest) -> VersionRoute:
    if request.version_id:
        version = route.versions.get(request.version_id.lower())
        if version is None:
            raise refuse(WorkerRefusal.NOT_VISIBLE, f"unknown version '{request.version_id}'")
        if version.status == "INACTIVE":
            raise refuse(WorkerRefusal.NOT_DEPLOYED, f"version '{request.version_id}' is not deployed")
        return version
    deployed = _deployed(route)
    if not deployed:
        raise refuse(WorkerRefusal.NOT_DEPLOYED, f"function '{request.function_id}' has no deployed version")
    return deployed[-1]


def _deployed(route: FunctionRoute) -> list[VersionRoute]:
    return [v for v in route.versions.values() if v.status != "INACTIVE"]


def _max_request_concurrency(specs: list[Mapping[str, Any]] | list[dict[str, Any]]) -> int:
    """The deployment's bound on one instance's invocations at once (NVCF's default is 1); 0
    without a specification (no bound from the deployment)."""
    return max((int(spec.get("maxRequestConcurrency") or 1) for spec in specs), default=0)


def _declared(request: pb.RegisterRequest, spec: Mapping[str, Any]) -> bool:
    """The worker's declared GPU / instance type (if any) are the specification's."""
    return (not request.gpu or request.gpu.lower() == str(spec.get("gpu", "")).lower()) and (
        not request.instance_type or request.instance_type.lower() == str(spec.get("instanceType", "")).lower()
    )


def _placement(cluster: Cluster, gpu_name: str, instance_type: str) -> tuple[str, str]:
    """The (GPU, instance type) a cluster worker runs on: as declared if the cluster offers it."""
    gpus = cluster.gpus
    if not gpus:
        if gpu_name or instance_type:
            raise refuse(WorkerRefusal.NOT_TARGETED, f"cluster '{cluster.name}' offers no GPUs")
        return "", ""
    gpu: dict[str, Any] | None = gpus[0]
    if gpu_name:
        gpu = next((g for g in gpus if str(g["name"]).lower() == gpu_name.lower()), None)
        if gpu is None:
            raise refuse(WorkerRefusal.NOT_TARGETED, f"cluster '{cluster.name}' does not offer GPU '{gpu_name}'")
    assert gpu is not None
    kinds = [k for k in gpu.get("instanceTypes") or () if isinstance(k, dict)]
    if instance_type:
        kind = next((k for k in kinds if str(k["name"]).lower() == instance_type.lower()), None)
        if kind is None:
            raise refuse(
                WorkerRefusal.NOT_TARGETED,
                f"cluster '{cluster.name}' does not offer instance type '{instance_type}' for '{gpu['name']}'",
            )
    else:
        kind = next((k for k in kinds if k.get("default")), kinds[0] if kinds else None)
    return str(gpu["name"]), str(kind["name"]) if kind else ""
