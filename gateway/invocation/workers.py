"""Who may attach a worker to which function version (the invoker's ``WorkerAuthorizer``).

A worker presents an admin JWT or an API key of the function's own account carrying
``deploy_function``; it serves the version it names, or the newest deployed one. Cluster
credentials issued by SIS join here when cluster management exists.
"""

from __future__ import annotations

from gateway.auth.authenticator import Authenticator
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.problems import GatewayError
from gateway.services.functions.routing import RoutingCache
from invoker.errors import WorkerRejected
from invoker.sessions import WorkerGrant
from protos.cfgate.worker.v1 import worker_pb2 as pb

WORKER_SCOPE = "deploy_function"


class WorkerAuthorizer:
    def __init__(self, authenticator: Authenticator, routes: RoutingCache, region: str, http_url: str) -> None:
        self._authenticator = authenticator
        self._routes = routes
        self._region = region
        self._http_url = http_url

    async def __call__(self, credential: str, request: pb.RegisterRequest) -> WorkerGrant:
        try:
            principal = await self._authenticator.authenticate(credential.encode())
        except GatewayError:
            raise WorkerRejected("invalid credential", unauthenticated=True) from None
        if principal.authorities.isdisjoint((WORKER_SCOPE, APIKEY_PREFIX + WORKER_SCOPE)):
            raise WorkerRejected(f"credential lacks the '{WORKER_SCOPE}' scope")
        route = self._routes.get(request.function_id.lower())
        if route is None or route.nca_id != principal.nca_id:
            raise WorkerRejected(f"unknown function '{request.function_id}'")
        deployed = [v for v in route.versions.values() if v.status != "INACTIVE"]
        if request.version_id:
            version = route.versions.get(request.version_id.lower())
            if version is None:
                raise WorkerRejected(f"unknown version '{request.version_id}'")
            if version.status == "INACTIVE":
                raise WorkerRejected(f"version '{request.version_id}' is not deployed")
        elif deployed:
            version = deployed[-1]
        else:
            raise WorkerRejected(f"function '{request.function_id}' has no deployed version")
        metadata = {
            "gpu": request.gpu,
            "instanceType": request.instance_type,
            "backend": request.backend or "cfgate",
            "location": request.location,
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
