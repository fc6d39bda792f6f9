"""API key records. The key value is never stored: rows are found by the sha256 of the key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import api_keys


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    key_hash: str
    nca_id: str
    owner_id: str
    owner_type: str
    issuer_service_id: str
    audience_service_ids: list[str]
    description: str
    status: str
    authorizations: dict[str, Any]
    created_at: int
    expires_at: int


class ApiKeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, record: ApiKeyRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(**_row(record)))

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return ApiKeyRecord(**row._asdict()) if row else None

    async def by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
        return ApiKeyRecord(**row._asdict()) if row else None

    async def list_for_owner(self, issuer_service_id: str, owner_id: str) -> list[ApiKeyRecord]:
        query = (
            select(api_keys)
            .where(api_keys.c.issuer_service_id == issuer_service_id, api_keys.c.owner_id == owner_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ApiKeyRecord(**row._asdict()) for row in rows]

    async def delete(self, key_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
        return bool(result.rowcount)

    async def set_authorizations(self, key_id: str, authorizations: dict[str, Any]) -> ApiKeyRecord | None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(authorizations=authorizations)
            )
        if not result.rowcount:
            return None
        return await self.get(key_id)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return len((await conn.execute(select(api_keys.c.id))).all())


def _row(record: ApiKeyRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in ApiKeyRecord.__slots__}
