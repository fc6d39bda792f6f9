"""The invocation hot path's view of functions: function id → versions, status, owner, sharing.

Reads are plain dict lookups. Every control-plane write calls ``refresh(function_id)``, which
reloads that one function from the store; ``listeners`` let a many-process deployment broadcast
the invalidation (Redis pub/sub) so other processes refresh too.

A reload awaits several queries, so two reloads of one function (deploy → DEPLOYING, a worker's
registration → ACTIVE) overlap. Each reload takes a generation number before its first query and
writes its snapshot only if no reload that started later has written already: the snapshot left
in the cache is always the newest one read, never an older one that finished last.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from gateway.invocation.rate_policy import RatePolicy
from gateway.llm.catalog import LlmRoute, llm_route
from gateway.store.deployments import DeploymentRepository
from gateway.store.functions import FUNCTION_LEVEL, AuthorizationRepository, FunctionRepository

log = logging.getLogger("gateway.routing")

INVOCABLE_STATUSES = frozenset({"ACTIVE", "DEGRADING", "DEGRADED"})

RefreshListener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class VersionRoute:
    version_id: str
    name: str
    status: str
    inference_url: str
    inference_port: int
    function_type: str
    api_body_format: str
    rate_limit: RatePolicy | None
    max_request_concurrency: int
    shared_with: frozenset[str]  # accounts this version alone is shared with
    llm: LlmRoute | None = None  # functionType LLM: its models and queue priorities

    @property
    def invocable(self) -> bool:
        return self.status in INVOCABLE_STATUSES


@dataclass(frozen=True, slots=True)
class FunctionRoute:
    function_id: str
    nca_id: str
    public: bool
    shared_with: frozenset[str]  # accounts the whole function is shared with
    versions: Mapping[str, VersionRoute]

    def shared_with_account(self, nca_id: str, version_id: str | None = None) -> bool:
        if nca_id in self.shared_with:
            return True
        if version_id is None:
            return any(nca_id in v.shared_with for v in self.versions.values())
        version = self.versions.get(version_id)
        return version is not None and nca_id in version.shared_with

    def invocable_versions(self) -> list[VersionRoute]:
        return [v for v in self.versions.values() if v.invocable]


class RoutingCache:
    def __init__(
        self, functions: FunctionRepository, authorizations: AuthorizationRepository, deployments: DeploymentRepository
    ) -> None:
        self._functions = functions
        self._authorizations = authorizations
        self._deployments = deployments
        self._routes: dict[str, FunctionRoute] = {}
        self._function_of: dict[str, str] = {}  # version id → function id, of the routes held
        self.listeners: list[RefreshListener] = []
        self._generation = 0
        # Per function with a reload in flight: how many, and the generation last written. Both
        # go once no reload is in flight (any later reload has a higher generation anyway).
        self._in_flight: dict[str, int] = {}
        self._written: dict[str, int] = {}

    def get(self, function_id: str) -> FunctionRoute | None:
        return self._routes.get(function_id)

    def __len__(self) -> int:
        return len(self._routes)

    def version(self, version_id: str) -> VersionRoute | None:
        function_id = self._function_of.get(version_id)
        route = self._routes.get(function_id) if function_id is not None else None
        return route.versions.get(version_id) if route is not None else None

    def all(self) -> list[FunctionRoute]:
        """Every function known here (a snapshot: reloads replace entries, never mutate them)."""
        return list(self._routes.values())

    async def load_all(self) -> None:
        """Load every function from the store, dropping routes of functions deleted meanwhile."""
        known = set(await self._functions.all_function_ids())
        # Functions gone from the store are reloaded too (which drops them) rather than dropped
        # here: a reload ordered by generation cannot undo a function a concurrent refresh added.
        for function_id in known | set(self._routes):
            await self._reload(function_id)

    async def refresh(self, function_id: str) -> None:
        """Reload one function after a write here, and tell the listeners (other processes)."""
        await self._reload(function_id)
        for listener in self.listeners:
            try:
                await listener(function_id)
            except Exception:
                log.exception("routing refresh listener failed for %s", function_id)

    async def invalidated(self, function_id: str) -> None:
        """Another process changed this function: reload it without re-broadcasting."""
        await self._reload(function_id)

    async def _reload(self, function_id: str) -> None:
        self._generation += 1
        generation = self._generation
        self._in_flight[function_id] = self._in_flight.get(function_id, 0) + 1
        try:
            route = await self._load(function_id)
        finally:
            left = self._in_flight.pop(function_id) - 1
            newest = self._written.get(function_id, 0)
            if left:
                self._in_flight[function_id] = left
            else:
                self._written.pop(function_id, None)
        if generation > newest:
            previous = self._routes.get(function_id)
            for version_id in previous.versions if previous is not None else ():
                self._function_of.pop(version_id, None)
            if route is None:
                self._routes.pop(function_id, None)
            else:
                self._routes[function_id] = route
                self._function_of.update(dict.fromkeys(route.versions, function_id))
            if left:
                self._written[function_id] = generation

    async def _load(self, function_id: str) -> FunctionRoute | None:
        """The function as the store has it now (several queries: other reloads may interleave)."""
        versions = await self._functions.versions(function_id)
        if not versions:
            return None
        shares = await self._authorizations.list(function_id)
        concurrency = {
            d.version_id: d.max_request_concurrency for d in await self._deployments.for_function(function_id)
        }
        function_level = frozenset(a.nca_id for a in shares if a.version_id == FUNCTION_LEVEL)
        routes = {}
        for v in versions:
            spec = v.spec
            routes[v.version_id] = VersionRoute(
                version_id=v.version_id,
                name=v.name,
                status=v.status,
                inference_url=spec["inferenceUrl"],
                inference_port=int(spec.get("inferencePort") or 8000),
                function_type=spec.get("functionType", "DEFAULT"),
                api_body_format=spec.get("apiBodyFormat", "CUSTOM"),
                rate_limit=RatePolicy.from_spec(spec.get("rateLimit")),
                max_request_concurrency=concurrency.get(v.version_id, 1),
                shared_with=frozenset(a.nca_id for a in shares if a.version_id == v.version_id),
                llm=llm_route(spec),
            )
        return FunctionRoute(
            function_id=function_id,
            nca_id=versions[0].nca_id,
            public=any(v.public for v in versions),
            shared_with=function_level,
            versions=routes,
        )
