"""Registered clusters (SIS). A cluster's credential is found by its sha256, never stored itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import clusters


class DuplicateClusterName(Exception):
    """The account already has a cluster of that name (the unique index said so)."""


@dataclass(frozen=True, slots=True)
class Cluster:
    cluster_id: str
    nca_id: str
    name: str
    group_name: str
    credential_hash: str
    spec: dict[str, Any]
    created_at: int
    updated_at: int

    @property
    def authorized_nca_ids(self) -> list[str]:
        return [str(n) for n in self.spec.get("authorizedNCAIds") or ()]

    @property
    def gpus(self) -> list[dict[str, Any]]:
        return [g for g in self.spec.get("gpus") or () if isinstance(g, dict)]

    def visible_to(self, nca_id: str) -> bool:
        """The owning account, and the accounts it offers itself to (``authorizedNCAIds``).

        Listing only: an offer is not consent. Where a cluster may run work is
        ``gateway.services.clusters.placement``.
        """
        return self.nca_id == nca_id or nca_id in self.authorized_nca_ids


class ClusterRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, cluster: Cluster) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(clusters.insert().values(**_row(cluster)))
        except IntegrityError:
            raise DuplicateClusterName(cluster.name) from None

    async def get(self, nca_id: str, cluster_id: str) -> Cluster | None:
        query = select(clusters).where(clusters.c.nca_id == nca_id, clusters.c.cluster_id == cluster_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Cluster(**row._asdict()) if row else None

    async def by_credential(self, credential_hash: str) -> Cluster | None:
        query = select(clusters).where(clusters.c.credential_hash == credential_hash)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Cluster(**row._asdict()) if row else None

    async def for_account(self, nca_id: str) -> list[Cluster]:
        query = (
            select(clusters).where(clusters.c.nca_id == nca_id).order_by(clusters.c.created_at, clusters.c.cluster_id)
        )
        async with self._engine.connect() as conn:
            return [Cluster(**row._asdict()) for row in await conn.execute(query)]

    async def all(self) -> list[Cluster]:
        # A registry holds a handful of clusters: visibility (JSON membership) is filtered in Python
        # rather than with dialect-specific JSON operators.
        query = select(clusters).order_by(clusters.c.created_at, clusters.c.cluster_id)
        async with self._engine.connect() as conn:
            return [Cluster(**row._asdict()) for row in await conn.execute(query)]

    async def visible_to(self, nca_id: str) -> list[Cluster]:
        return [c for c in await self.all() if c.visible_to(nca_id)]

    async def update(self, cluster: Cluster) -> None:
        values = {"name": cluster.name, "group_name": cluster.group_name, "spec": cluster.spec}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(clusters)
                    .where(clusters.c.cluster_id == cluster.cluster_id)
                    .values(**values, updated_at=cluster.updated_at)
                )
        except IntegrityError:
            raise DuplicateClusterName(cluster.name) from None

    async def delete(self, nca_id: str, cluster_id: str) -> bool:
        query = delete(clusters).where(clusters.c.nca_id == nca_id, clusters.c.cluster_id == cluster_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)


def _row(cluster: Cluster) -> dict[str, Any]:
    return {name: getattr(cluster, name) for name in Cluster.__slots__}
