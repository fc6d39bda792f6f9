"""The nico host's ASGI app: the implemented operations, a 501 naming every other operation of
the official document, NICo's error body for everything else, and the site clock's lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.access import bootstrap_door_open
from gateway.runtime import Runtime
from gateway.services.nico import identity, instances, networks, sites, sshkeys, stats
from gateway.services.nico.agent import EmbeddedSiteAgent
from gateway.services.nico.authority import allowed_roles
from gateway.services.nico.context import Handler, Nico, json
from gateway.services.nico.errors import (
    Forbidden,
    MethodNotAllowed,
    NicoError,
    NotFound,
    NotImplementedOperation,
    error_response,
)
from gateway.services.nico.inventory import load_inventory
from gateway.services.nico.openapi import served_document
from gateway.services.nico.reconciler import SiteClock
from gateway.services.nico.spec_operations import SPEC_OPERATIONS
from gateway.services.nico.store import NicoStore
from gateway.services.nico.tokens import mint_nico_token, parse_token_request
from gateway.store.clock import rfc3339

log = logging.getLogger("gateway.nico")

PREFIX = "/v2/org/{org}/nico"
API_VERSION = "1.6.0"
# Not an official operation: the real service serves no document (it is published as Redoc).
OPENAPI_PATH = PREFIX + "/openapi"

# (method, path below PREFIX) → handler; the rest of SPEC_OPERATIONS answers 501.
OPERATIONS: dict[tuple[str, str], Handler] = {
    ("GET", "/metadata"): identity.get_metadata,
    ("GET", "/user/current"): identity.get_current_user,
    ("GET", "/service-account/current"): identity.get_service_account,
    ("GET", "/infrastructure-provider/current"): identity.get_current_provider,
    ("GET", "/tenant/current"): identity.get_current_tenant,
    ("GET", "/infrastructure-provider/current/stats"): stats.provider_stats,
    ("GET", "/tenant/current/stats"): stats.tenant_stats,
    ("POST", "/tenant/account"): identity.create_tenant_account,
    ("GET", "/tenant/account"): identity.list_tenant_accounts,
    ("GET", "/tenant/account/{accountId}"): identity.get_tenant_account,
    ("PATCH", "/tenant/account/{accountId}"): identity.accept_tenant_account,
    ("DELETE", "/tenant/account/{accountId}"): identity.delete_tenant_account,
    ("POST", "/site"): sites.create_site,
    ("GET", "/site"): sites.list_sites,
    ("GET", "/site/{siteId}"): sites.get_site,
    ("PATCH", "/site/{siteId}"): sites.update_site,
    ("DELETE", "/site/{siteId}"): sites.delete_site,
    ("GET", "/site/{siteId}/status-history"): sites.get_site_status_history,
    ("GET", "/machine"): sites.list_machines,
    ("GET", "/machine/{machineId}"): sites.get_machine,
    ("PATCH", "/machine/{machineId}"): sites.update_machine,
    ("GET", "/machine/{machineId}/status-history"): sites.get_machine_status_history,
    ("POST", "/instance/type"): sites.create_instance_type,
    ("GET", "/instance/type"): sites.list_instance_types,
    ("GET", "/instance/type/{instanceTypeId}"): sites.get_instance_type,
    ("PATCH", "/instance/type/{instanceTypeId}"): sites.update_instance_type,
    ("DELETE", "/instance/type/{instanceTypeId}"): sites.delete_instance_type,
    ("POST", "/instance/type/{instanceTypeId}/machine"): sites.create_machine_association,
    ("GET", "/instance/type/{instanceTypeId}/machine"): sites.list_machine_associations,
    ("DELETE", "/instance/type/{instanceTypeId}/machine/{machineAssociationId}"): sites.delete_machine_association,
    ("POST", "/ipblock"): networks.create_ipblock,
    ("GET", "/ipblock"): networks.list_ipblocks,
    ("GET", "/ipblock/{ipBlockId}"): networks.get_ipblock,
    ("PATCH", "/ipblock/{ipBlockId}"): networks.update_ipblock,
    ("DELETE", "/ipblock/{ipBlockId}"): networks.delete_ipblock,
    ("GET", "/ipblock/{ipBlockId}/derived"): networks.list_derived_ipblocks,
    ("POST", "/allocation"): networks.create_allocation,
    ("GET", "/allocation"): networks.list_allocations,
    ("GET", "/allocation/{allocationId}"): networks.get_allocation,
    ("PATCH", "/allocation/{allocationId}"): networks.update_allocation,
    ("DELETE", "/allocation/{allocationId}"): networks.delete_allocation,
    ("PATCH", "/allocation/{allocationId}/constraint/{allocationConstraintId}"): networks.update_allocation_constraint,
    ("POST", "/vpc"): networks.create_vpc,
    ("GET", "/vpc"): networks.list_vpcs,
    ("GET", "/vpc/{vpcId}"): networks.get_vpc,
    ("PATCH", "/vpc/{vpcId}"): networks.update_vpc,
    ("DELETE", "/vpc/{vpcId}"): networks.delete_vpc,
    ("PATCH", "/vpc/{vpcId}/virtualization"): networks.update_vpc_virtualization,
    ("POST", "/vpc-prefix"): networks.create_vpc_prefix,
    ("GET", "/vpc-prefix"): networks.VPC_PREFIX["list"],
    ("GET", "/vpc-prefix/{vpcPrefixId}"): networks.VPC_PREFIX["get"],
    ("PATCH", "/vpc-prefix/{vpcPrefixId}"): networks.VPC_PREFIX["patch"],
    ("DELETE", "/vpc-prefix/{vpcPrefixId}"): networks.VPC_PREFIX["delete"],
    ("POST", "/subnet"): networks.create_subnet,
    ("GET", "/subnet"): networks.SUBNET["list"],
    ("GET", "/subnet/{subnetId}"): networks.SUBNET["get"],
    ("PATCH", "/subnet/{subnetId}"): networks.SUBNET["patch"],
    ("DELETE", "/subnet/{subnetId}"): networks.SUBNET["delete"],
    ("POST", "/operating-system"): instances.create_os,
    ("GET", "/operating-system"): instances.list_os,
    ("GET", "/operating-system/{operatingSystemId}"): instances.get_os,
    ("PATCH", "/operating-system/{operatingSystemId}"): instances.update_os,
    ("DELETE", "/operating-system/{operatingSystemId}"): instances.delete_os,
    ("POST", "/instance"): instances.create_instance,
    ("GET", "/instance"): instances.list_instances,
    ("GET", "/instance/{instanceId}"): instances.get_instance,
    ("PATCH", "/instance/{instanceId}"): instances.update_instance,
    ("DELETE", "/instance/{instanceId}"): instances.delete_instance,
    ("GET", "/instance/{instanceId}/status-history"): instances.get_instance_status_history,
    ("GET", "/instance/{instanceId}/interface"): instances.list_instance_interfaces,
    ("POST", "/sshkeygroup"): sshkeys.create_group,
    ("GET", "/sshkeygroup"): sshkeys.list_groups,
    ("GET", "/sshkeygroup/{sshKeyGroupId}"): sshkeys.get_group,
    ("PATCH", "/sshkeygroup/{sshKeyGroupId}"): sshkeys.update_group,
    ("DELETE", "/sshkeygroup/{sshKeyGroupId}"): sshkeys.delete_group,
    ("POST", "/sshkey"): sshkeys.create_key,
    ("GET", "/sshkey"): sshkeys.list_keys,
    ("GET", "/sshkey/{sshKeyId}"): sshkeys.get_key,
    ("PATCH", "/sshkey/{sshKeyId}"): sshkeys.update_key,
    ("DELETE", "/sshkey/{sshKeyId}"): sshkeys.delete_key,
}


def implemented_operation_ids() -> list[str]:
    return [op for method, path, op in SPEC_OPERATIONS if (method, path) in OPERATIONS]


def _route_order(path: str) -> tuple[int, ...]:
    # Literal segments before parameters, so /instance/type wins over /instance/{instanceId}.
    return tuple(1 if part.startswith("{") else 0 for part in path.strip("/").split("/"))


def _endpoint(nico: Nico, handler: Handler, roles: frozenset[str]) -> Callable[[Request], Any]:
    required = tuple(sorted(roles))

    async def endpoint(request: Request) -> Response:
        if any("\x00" in str(value) for value in request.path_params.values()):
            raise NotFound("The requested resource could not be found")
        (await nico.caller(request)).require(*required)
        return await handler(nico, request)

    return endpoint


def _unimplemented(nico: Nico, operation_id: str, method: str, path: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        # Authenticated like every operation: no bearer is 401 and a token of another org 403,
        # whether or not the operation is served here.
        await nico.caller(request)
        raise NotImplementedOperation(
            f"Operation '{operation_id}' ({method} {PREFIX}{path}) is not implemented by the embedded NICo REST "
            "service; proxy nico to a real NICo REST with --upstream nico=URL",
            {"operationId": operation_id},
        )

    return endpoint


def build_routes(nico: Nico) -> list[Route]:
    known = {(m, p): op for m, p, op in SPEC_OPERATIONS}
    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    for (method, path), handler in OPERATIONS.items():
        by_path.setdefault(path, {})[method] = _endpoint(nico, handler, allowed_roles(method, path))
    for (method, path), op in known.items():
        if (method, path) not in OPERATIONS:
            by_path.setdefault(path, {})[method] = _unimplemented(nico, op, method, path)
    routes = []
    for path in sorted(by_path, key=_route_order):
        for method, endpoint in by_path[path].items():
            routes.append(Route(PREFIX + path, endpoint, methods=[method]))
    return routes


def _handlers() -> dict[Any, Callable[[Request, Exception], Any]]:
    async def nico_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NicoError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return error_response(MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}"))
        return error_response(NotFound("The requested resource could not be found"))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
        return error_response(NicoError("Error handling API request"))

    return {NicoError: nico_error, HTTPException: http_error, Exception: unexpected}


class NicoApp:
    """ASGI app of ``nico.<domain>``; its site clock runs from the first request's loop until ``close``."""

    def __init__(self, runtime: Runtime, routes_extra: Sequence[Route] = ()) -> None:
        settings = runtime.settings
        inventory = load_inventory(settings.nico_inventory)
        agent = EmbeddedSiteAgent(inventory)
        store = NicoStore(runtime.store.engine)
        self.nico = Nico(store, agent, inventory, runtime.verifier, settings.max_control_body_bytes, API_VERSION)
        self.clock = SiteClock(store, agent, settings.nico_step_ms)
        self._runtime = runtime
        self._task: asyncio.Task[None] | None = None
        door = Route("/v1/admin/keys", self._mint, methods=["POST"])
        document = Route(OPENAPI_PATH, self._openapi, methods=["GET"])
        self.app = Starlette(
            routes=[door, document, *routes_extra, *build_routes(self.nico)], exception_handlers=_handlers()
        )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.clock.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _openapi(self, request: Request) -> Response:
        # Public like the official document itself (published with the Apache-2.0 source): no bearer,
        # the same bytes for every org in the path.
        return Response(served_document(), media_type="application/json")

    async def _mint(self, request: Request) -> Response:
        if not bootstrap_door_open(request, self._runtime):
            raise Forbidden("NICo tokens are issued only to loopback clients or with the bootstrap secret")
        body = await self.nico.body(request)
        org, roles, service_account, subject, ttl = parse_token_request(body)
        email = body.get("email") if isinstance(body.get("email"), str) else None
        value, claims = mint_nico_token(
            self._runtime.keyring, self._runtime.settings.issuer, org, roles, service_account, subject, ttl, email
        )
        return json(
            {
                "value": value,
                "org": org,
                "roles": roles,
                "serviceAccount": service_account,
                "sub": subject,
                "expiresAt": rfc3339(claims["exp"] * 1000),
            }
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def build_nico_app(runtime: Runtime) -> NicoApp:
    return NicoApp(runtime)
