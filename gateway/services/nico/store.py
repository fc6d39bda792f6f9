"""The NICo repository: entity rows, their status history and IPAM prefixes, in one transaction.

``lock`` is the serialisation point for everything that counts before it writes (IPAM carving,
machine allocation, instance quota): it updates the parent row first, which takes the row lock on
PostgreSQL and the database write lock on SQLite, so a concurrent creator waits and then sees the
first one's rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.services.nico.errors import Conflict
from gateway.services.nico.tables import nico_objects, nico_prefixes, nico_status_history
from gateway.store.clock import now_ms

HISTORY_LIMIT = 20


@dataclass(slots=True)
class Obj:
    """One NICo entity: relation columns plus its wire fields (``doc``, camelCase)."""

    id: str
    kind: str
    org: str
    status: str
    doc: dict[str, Any]
    provider_id: str | None = None
    tenant_id: str | None = None
    site_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    unique_key: str | None = None
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    status: str
    message: str | None
    created_at: int


_COLUMNS = [f.name for f in dataclasses.fields(Obj)]


def _obj(row: Any) -> Obj:
    values = row._asdict()
    return Obj(**{name: values[name] for name in _COLUMNS})


class Tx:
    """Reads and writes on one connection (a transaction when opened with ``NicoStore.write``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, kind: str, object_id: str) -> Obj | None:
        query = select(nico_objects).where(nico_objects.c.kind == kind, nico_objects.c.id == object_id)
        row = (await self.conn.execute(query)).first()
        return _obj(row) if row else None

    async def find(self, kind: str, **where: Any) -> list[Obj]:
        query = select(nico_objects).where(nico_objects.c.kind == kind)
        for column, value in where.items():
            col = nico_objects.c[column]
            query = query.where(col.in_(value) if isinstance(value, (list, tuple, set)) else col == value)
        query = query.order_by(nico_objects.c.created_at, nico_objects.c.id)
        return [_obj(row) for row in await self.conn.execute(query)]

    async def count(self, kind: str, **where: Any) -> int:
        query = select(func.count()).select_from(nico_objects).where(nico_objects.c.kind == kind)
        for column, value in where.items():
            col = nico_objects.c[column]
            query = query.where(col.in_(value) if isinstance(value, (list, tuple, set)) else col == value)
        return int((await self.conn.execute(query)).scalar_one())

    async def lock(self, object_id: str) -> None:
        await self.conn.execute(
            update(nico_objects).where(nico_objects.c.id == object_id).values(updated_at=nico_objects.c.updated_at)
        )

    async def insert(self, obj: Obj, message: str | None = None) -> Obj:
        now = now_ms()
        obj.created_at = obj.updated_at = now
        values = {name: getattr(obj, name) for name in _COLUMNS}
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(nico_objects.insert().values(**values))
        except IntegrityError:
            raise Conflict(f"{obj.kind} with name '{obj.name}' already exists") from None
        await self._history(obj.id, obj.status, message, now)
        return obj

    async def save(self, obj: Obj, message: str | None = None, *, status_changed: bool = False) -> Obj:
        obj.updated_at = now_ms()
        values = {name: getattr(obj, name) for name in _COLUMNS if name not in ("id", "created_at")}
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(update(nico_objects).where(nico_objects.c.id == obj.id).values(**values))
        except IntegrityError:
            raise Conflict(f"{obj.kind} with name '{obj.name}' already exists") from None
        if status_changed:
            await self._history(obj.id, obj.status, message, obj.updated_at)
        return obj

    async def set_status(self, obj: Obj, status: str, message: str | None = None) -> Obj:
        obj.status = status
        return await self.save(obj, message, status_changed=True)

    async def remove(self, object_id: str) -> None:
        await self.conn.execute(delete(nico_objects).where(nico_objects.c.id == object_id))
        await self.conn.execute(delete(nico_status_history).where(nico_status_history.c.object_id == object_id))
        await self.conn.execute(delete(nico_prefixes).where(nico_prefixes.c.owner_id == object_id))

    async def history(self, object_ids: Sequence[str]) -> dict[str, list[HistoryEntry]]:
        found: dict[str, list[HistoryEntry]] = {i: [] for i in object_ids}
        if not object_ids:
            return found
        query = (
            select(nico_status_history)
            .where(nico_status_history.c.object_id.in_(list(object_ids)))
            .order_by(nico_status_history.c.seq.desc())
        )
        for row in await self.conn.execute(query):
            entries = found[row.object_id]
            if len(entries) < HISTORY_LIMIT:
                entries.append(HistoryEntry(row.status, row.message, row.created_at))
        return found

    async def prefixes(self, pool_id: str) -> list[tuple[str, str]]:
        """(owner id, cidr) of every prefix carved from ``pool_id``."""
        query = select(nico_prefixes.c.owner_id, nico_prefixes.c.cidr).where(nico_prefixes.c.pool_id == pool_id)
        return [(row.owner_id, row.cidr) for row in await self.conn.execute(query)]

    async def add_prefix(self, owner_id: str, pool_id: str, cidr: str) -> None:
        await self.conn.execute(nico_prefixes.insert().values(owner_id=owner_id, pool_id=pool_id, cidr=cidr))

    async def release_prefix(self, owner_id: str) -> None:
        await self.conn.execute(delete(nico_prefixes).where(nico_prefixes.c.owner_id == owner_id))

    async def _history(self, object_id: str, status: str, message: str | None, at: int) -> None:
        await self.conn.execute(
            nico_status_history.insert().values(object_id=object_id, status=status, message=message, created_at=at)
        )


class NicoStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._engine.connect() as conn:
            yield Tx(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self._engine.begin() as conn:
            yield Tx(conn)
