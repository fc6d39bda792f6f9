"""Function access and status, shared by every control-plane endpoint module.

Access rules (one place): a version is visible to its owner, to accounts it (or its whole
function) is shared with, and to everyone when public. Reads of an invisible function are 404;
writes by a non-owner who can see it are 403; writes to an invisible one are 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.problems import BadRequest, Forbidden, NotFound
from gateway.services.functions.models import CreateFunctionRequest
from gateway.services.functions.routing import RoutingCache
from gateway.services.functions.status import next_status
from gateway.store.deployments import DeploymentRepository
from gateway.store.functions import AuthorizationRepository, FunctionRepository, FunctionVersion
from gateway.store.schema import telemetries
from invoker.instances import InstanceRegistry

log = logging.getLogger("gateway.functions")

# Called with (function_id, version_id, graceful) when a version is undeployed.
UndeployHook = Callable[[str, str, bool], Awaitable[None]]


class Catalog:
    def __init__(
        self,
        functions: FunctionRepository,
        authorizations: AuthorizationRepository,
        deployments: DeploymentRepository,
        instances: InstanceRegistry,
        routes: RoutingCache,
        engine: AsyncEngine,
    ) -> None:
        self.functions = functions
        self.authorizations = authorizations
        self.deployments = deployments
        self.instances = instances
        self.routes = routes
        self._engine = engine
        self.undeploy_hooks: list[UndeployHook] = []
        # Status refreshes read, compute and write: overlapping ones could store an older
        # computation last (ACTIVE with no instance left). They are rare; one lock orders them.
        self._status_lock = asyncio.Lock()
        instances.subscribe(self._instances_changed)

    async def visible_versions(self, nca_id: str, function_id: str) -> list[FunctionVersion]:
        versions = await self.functions.versions(function_id)
        if not versions:
            return []
        if versions[0].nca_id == nca_id:
            return versions
        shares = await self.authorizations.list(function_id)
        whole = any(a.nca_id == nca_id and a.version_id == "" for a in shares)
        shared_versions = {a.version_id for a in shares if a.nca_id == nca_id}
        return [v for v in versions if v.public or whole or v.version_id in shared_versions]

    async def visible_version(self, nca_id: str, function_id: str, version_id: str) -> FunctionVersion:
        for version in await self.visible_versions(nca_id, function_id):
            if version.version_id == version_id:
                return version
        raise NotFound(f"Function '{function_id}' version '{version_id}' not found")

    async def owned_versions(self, nca_id: str, function_id: str) -> list[FunctionVersion]:
        """Every version of a function the caller owns (404 if unseen, 403 if someone else's)."""
        visible = await self.visible_versions(nca_id, function_id)
        if not visible:
            raise NotFound(f"Function '{function_id}' not found")
        if visible[0].nca_id != nca_id:
            raise Forbidden(f"Function '{function_id}' is owned by a different account")
        return visible

    async def owned_version(self, nca_id: str, function_id: str, version_id: str) -> FunctionVersion:
        version = await self.visible_version(nca_id, function_id, version_id)
        if version.nca_id != nca_id:
            raise Forbidden(f"Function '{function_id}' is owned by a different account")
        return version

    async def _instances_changed(self, function_id: str, version_id: str) -> None:
        await self.refresh_status(function_id, version_id)

    async def validate_references(self, nca_id: str, request: CreateFunctionRequest) -> None:
        """Telemetries named by a function must exist in the caller's account (400 otherwise)."""
        if request.telemetries is None:
            return
        wanted = {
            kind: value
            for kind, value in request.telemetries.model_dump(exclude_none=True).items()
            if isinstance(value, str)
        }
        known = await self.telemetry_ids(nca_id)
        for kind, telemetry_id in wanted.items():
            if telemetry_id not in known:
                raise BadRequest(
                    f"Validation failed: [field=telemetries.{kind}, rejected={telemetry_id[:64]}, "
                    "message=unknown telemetry]"
                )

    async def telemetry_ids(self, nca_id: str) -> set[str]:
        query = select(telemetries.c.telemetry_id).where(telemetries.c.nca_id == nca_id)
        async with self._engine.connect() as conn:
            return {row.telemetry_id for row in await conn.execute(query)}

    async def undeploy(self, version: FunctionVersion, *, graceful: bool) -> bool:
        """Remove the version's deployment (if any) and move it to INACTIVE.

        ``graceful`` lets in-flight invocations finish; the invocation layer drains workers through
        ``undeploy_hooks`` (called with the version and the flag)."""
        removed = await self.deployments.delete(version.version_id)
        for hook in self.undeploy_hooks:
            await hook(version.function_id, version.version_id, graceful)
        await self.refresh_status(version.function_id, version.version_id)
        return removed

    async def refresh_status(self, function_id: str, version_id: str) -> str | None:
        """Recompute a version's status from its deployment and live instances; store it if changed."""
        async with self._status_lock:
            version = await self.functions.get(function_id, version_id)
            if version is None:
                return None
            deployment = await self.deployments.by_version(version_id)
            status = next_status(
                version.status,
                deployment is not None,
                deployment.min_instances if deployment else 0,
                self.instances.count(version_id),
            )
            if status != version.status:
                log.info("function %s version %s: %s -> %s", function_id, version_id, version.status, status.value)
                await self.functions.set_status(version_id, status.value)
                await self.routes.refresh(function_id)
            return status.value
