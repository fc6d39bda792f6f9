"""Asset records: who owns an asset id, what its upload must carry, and whether it arrived.

A row is written when ``POST /v2/nvcf/assets`` hands out an upload URL; ``uploaded_at`` and
``size`` are set once the bytes are stored. Like NVCF (where an asset is an S3 object), an asset
whose upload has not completed is not visible through the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import assets


@dataclass(frozen=True, slots=True)
class AssetRecord:
    asset_id: str
    nca_id: str
    content_type: str
    description: str
    size: int | None
    uploaded_at: int | None
    created_at: int

    @property
    def uploaded(self) -> bool:
        return self.uploaded_at is not None


def _record(row: Any) -> AssetRecord:
    return AssetRecord(**row._asdict())


class AssetRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: AssetRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                assets.insert().values(
                    asset_id=record.asset_id,
                    nca_id=record.nca_id,
                    content_type=record.content_type,
                    description=record.description,
                    size=record.size,
                    uploaded_at=record.uploaded_at,
                    created_at=record.created_at,
                )
            )

    async def get(self, asset_id: str) -> AssetRecord | None:
        """The record whatever its account (blob URLs carry no account; their signature binds it)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(assets).where(assets.c.asset_id == asset_id))).first()
        return _record(row) if row else None

    async def owned(self, nca_id: str, asset_id: str) -> AssetRecord | None:
        async with self._engine.connect() as conn:
            query = select(assets).where(assets.c.asset_id == asset_id, assets.c.nca_id == nca_id)
            row = (await conn.execute(query)).first()
        return _record(row) if row else None

    async def uploaded(self, nca_id: str) -> list[AssetRecord]:
        query = (
            select(assets)
            .where(assets.c.nca_id == nca_id, assets.c.uploaded_at.is_not(None))
            .order_by(assets.c.uploaded_at, assets.c.asset_id)
        )
        async with self._engine.connect() as conn:
            return [_record(row) for row in (await conn.execute(query)).all()]

    async def mark_uploaded(self, asset_id: str, size: int, at: int) -> bool:
        """Record a completed upload; ``False`` if the asset was deleted meanwhile."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(assets).where(assets.c.asset_id == asset_id).values(size=size, uploaded_at=at)
            )
        return bool(result.rowcount)

    async def delete(self, nca_id: str, asset_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(assets).where(assets.c.asset_id == asset_id, assets.c.nca_id == nca_id))
        return bool(result.rowcount)

    async def purge_pending(self, nca_id: str, created_before: int) -> int:
        """Forget upload URLs handed out long ago whose upload never completed."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(assets).where(
                    assets.c.nca_id == nca_id,
                    assets.c.uploaded_at.is_(None),
                    assets.c.created_at < created_before,
                )
            )
        return int(result.rowcount or 0)
