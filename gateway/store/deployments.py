"""Deployments: one per function version, holding its GPU specifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.clock import now_ms
from gateway.store.schema import deployments


@dataclass(frozen=True, slots=True)
class Deployment:
    deployment_id: str
    function_id: str
    version_id: str
    nca_id: str
    specs: list[dict[str, Any]]
    health_info: list[dict[str, Any]]
    created_at: int
    updated_at: int

    @property
    def min_instances(self) -> int:
        return sum(int(spec.get("minInstances", 0)) for spec in self.specs)

    @property
    def max_request_concurrency(self) -> int:
        return max((int(spec.get("maxRequestConcurrency") or 1) for spec in self.specs), default=1)


class DeploymentRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, deployment: Deployment) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(deployments.insert().values(**_row(deployment)))

    async def by_version(self, version_id: str) -> Deployment | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(deployments).where(deployments.c.version_id == version_id))).first()
        return Deployment(**row._asdict()) if row else None

    async def by_id(self, deployment_id: str) -> Deployment | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(deployments).where(deployments.c.deployment_id == deployment_id))).first()
        return Deployment(**row._asdict()) if row else None

    async def for_function(self, function_id: str) -> list[Deployment]:
        query = select(deployments).where(deployments.c.function_id == function_id)
        async with self._engine.connect() as conn:
            return [Deployment(**row._asdict()) for row in await conn.execute(query)]

    async def for_account(self, nca_id: str) -> list[Deployment]:
        query = select(deployments).where(deployments.c.nca_id == nca_id).order_by(deployments.c.created_at)
        async with self._engine.connect() as conn:
            return [Deployment(**row._asdict()) for row in await conn.execute(query)]

    async def update_specs(self, deployment_id: str, specs: list[dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(deployments)
                .where(deployments.c.deployment_id == deployment_id)
                .values(specs=specs, updated_at=now_ms())
            )

    async def delete(self, version_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(deployments).where(deployments.c.version_id == version_id))
        return bool(result.rowcount)


def _row(deployment: Deployment) -> dict[str, Any]:
    return {name: getattr(deployment, name) for name in Deployment.__slots__}
