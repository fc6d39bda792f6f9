"""Who may attach a worker to which function version (the invoker's ``WorkerAuthorizer``).

A worker presents one of:

* an admin JWT or an API key of the function's own account carrying ``deploy_function``; its
  ``gpu`` and ``instance_type`` are taken as it declares them;
* a **cluster credential** (``nvcc-…``, issued by SIS when the cluster was registered): it may
  serve functions of the cluster's account and of the accounts in the cluster's
  ``authorizedNCAIds``. Its GPU and instance type come from the cluster: a declared ``gpu`` /
  ``instance_type`` must be one the cluster offers (else PERMISSION_DENIED); none declared means
  the cluster's first GPU and that GPU's default instance type. A declared ``cluster_id`` must be
  the credential's cluster. The grant's metadata carries ``clusterId`` (and ``clusterName``), by
  which deleting the cluster finds and disconnects its sessions. An unknown, malformed or revoked
  cluster credential is UNAUTHENTICATED.

Either way the worker serves the version it names, or the newest deployed one. Whether the
version's deployment asked for the worker's GPU is not checked (a deployment's GPUs are validated
against the registered clusters when it is made).
"""

from __future__ import annotations

from typing import Any

from gateway.auth import cluster_credentials
from gateway.auth.authenticator import Authenticator
from gateway.auth.authority import principal_may_use_function
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.problems import GatewayError
from gateway.services.clusters.registry import ClusterRegistry
from gateway.services.functions.routing import FunctionRoute, RoutingCache, VersionRoute
from gateway.store.clusters import Cluster
from invoker.errors import WorkerRejected
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
    ) -> None:
        self._authenticator = authenticator
        self._routes = routes
        self._region = region
        self._http_url = http_url
        self._clusters = clusters

    async def __call__(self, credential: str, request: pb.RegisterRequest) -> WorkerGrant:
        if cluster_credentials.looks_like(credential):
            return await self._cluster_worker(credential, request)
        try:
            principal = await self._authenticator.authenticate(credential.encode())
        except GatewayError:
            raise WorkerRejected("invalid credential", unauthenticated=True) from None
        if principal.authorities.isdisjoint((WORKER_SCOPE, APIKEY_PREFIX + WORKER_SCOPE)):
            raise WorkerRejected(f"credential lacks the '{WORKER_SCOPE}' scope")
        route = self._routes.get(request.function_id.lower())
        if route is None or route.nca_id != principal.nca_id:
            raise WorkerRejected(f"unknown function '{request.function_id}'")
        # An API key serves only functions its resources name (gateway.auth.authority).
        if not principal_may_use_function(principal, route, route.function_id, request.version_id or None):
            raise WorkerRejected(f"the credential's resources do not include function '{request.function_id}'")
        metadata = {"gpu": request.gpu, "instanceType": request.instance_type, "backend": request.backend}
        return self._grant(route, _version(route, request), request, metadata)

    async def _cluster_worker(self, credential: str, request: pb.RegisterRequest) -> WorkerGrant:
        cluster = await self._clusters.by_credential(credential)
        if cluster is None:
            raise WorkerRejected("invalid or revoked cluster credential", unauthenticated=True)
        if request.cluster_id and request.cluster_id.lower() != cluster.cluster_id:
            raise WorkerRejected(f"the credential is not one of cluster '{request.cluster_id}'", unauthenticated=True)
        route = self._routes.get(request.function_id.lower())
        if route is None or not cluster.visible_to(route.nca_id):
            raise WorkerRejected(f"unknown function '{request.function_id}'")
        gpu, instance_type = _placement(cluster, request.gpu, request.instance_type)
        metadata = {
            "gpu": gpu,
            "instanceType": instance_type,
            "backend": cluster.group_name,
            CLUSTER_ID_KEY: cluster.cluster_id,
            "clusterName": cluster.name,
        }
        return self._grant(route, _version(route, request), request, metadata, location=str(cluster.spec["region"]))

    def _grant(
        self,
        route: FunctionRoute,
        version: VersionRoute,
        request: pb.RegisterRequest,
        placement: dict[str, str],
        *,
        location: str = "",
    ) -> WorkerGrant:
        metadata = {
            **placement,
            "backend": placement.get("backend") or "cfgate",
            "location": request.location or location,
            "region": self._region,
            "env": "cfgate",
            # Where the worker fetches input assets (their URLs are relative to it).
            "gatewayUrl": self._http_url,
        }
        return WorkerGrant(
            function_id=route.function_id,
            version_id=version.version_id,
            function_name=version.name,
            nca_id=route.nca_id,
            inference_url=version.inference_url,
            inference_port=version.inference_port,
            metadata={k: v for k, v in metadata.items() if v},
        )


def _version(route: FunctionRoute, request: pb.RegisterRequest) -> VersionRoute:
    if request.version_id:
        version = route.versions.get(request.version_id.lower())
        if version is None:
            raise WorkerRejected(f"unknown version '{request.version_id}'")
        if version.status == "INACTIVE":
            raise WorkerRejected(f"version '{request.version_id}' is not deployed")
        return version
    deployed = [v for v in route.versions.values() if v.status != "INACTIVE"]
    if not deployed:
        raise WorkerRejected(f"function '{request.function_id}' has no deployed version")
    return deployed[-1]


def _placement(cluster: Cluster, gpu_name: str, instance_type: str) -> tuple[str, str]:
    """The (GPU, instance type) a cluster worker runs on: as declared if the cluster offers it."""
    gpus = cluster.gpus
    if not gpus:
        if gpu_name or instance_type:
            raise WorkerRejected(f"cluster '{cluster.name}' offers no GPUs")
        return "", ""
    gpu: dict[str, Any] | None = gpus[0]
    if gpu_name:
        gpu = next((g for g in gpus if str(g["name"]).lower() == gpu_name.lower()), None)
        if gpu is None:
            raise WorkerRejected(f"cluster '{cluster.name}' does not offer GPU '{gpu_name}'")
    assert gpu is not None
    kinds = [k for k in gpu.get("instanceTypes") or () if isinstance(k, dict)]
    if instance_type:
        kind = next((k for k in kinds if str(k["name"]).lower() == instance_type.lower()), None)
        if kind is None:
            raise WorkerRejected(
                f"cluster '{cluster.name}' does not offer instance type '{instance_type}' for '{gpu['name']}'"
            )
    else:
        kind = next((k for k in kinds if k.get("default")), kinds[0] if kinds else None)
    return str(gpu["name"]), str(kind["name"]) if kind else ""
