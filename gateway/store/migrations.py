"""Versioned schema migrations, applied in order on start.

Each migration runs in its own transaction together with the row that records it. On PostgreSQL
an advisory transaction lock serialises processes that start at the same moment; on SQLite the
first write takes the database lock. Add a migration by appending to ``MIGRATIONS``; never edit
one that has shipped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import schema

MIGRATION_LOCK_ID = 0x0CF6A7E  # arbitrary, constant: identifies cfgate's migration lock


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[AsyncConnection], Awaitable[None]]


async def _initial(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync: schema.accounts.create(sync, checkfirst=True))
    await conn.run_sync(lambda sync: schema.api_keys.create(sync, checkfirst=True))


async def _control_plane(conn: AsyncConnection) -> None:
    def create(sync: Any) -> None:
        for table in schema.CONTROL_PLANE_TABLES:
            table.create(sync, checkfirst=True)

    await conn.run_sync(create)


async def _clusters(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync: schema.clusters.create(sync, checkfirst=True))


async def _tasks(conn: AsyncConnection) -> None:
    def create(sync: Any) -> None:
        for table in schema.TASK_TABLES:
            table.create(sync, checkfirst=True)

    await conn.run_sync(create)


async def _nico(conn: AsyncConnection) -> None:
    from gateway.services.nico.tables import create_nico_tables

    await create_nico_tables(conn)


async def _installation_keys(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync: schema.installation_keys.create(sync, checkfirst=True))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts and api keys", _initial),
    Migration(2, "functions, deployments, authorizations, secrets, telemetries, registries, assets", _control_plane),
    Migration(3, "SIS clusters and their credential hashes", _clusters),
    Migration(4, "NVCT tasks, task events, task results, task secrets", _tasks),
    Migration(5, "NICo REST entities, status history, IPAM prefixes", _nico),
    Migration(6, "signing and sealing keys shared by every gateway, sealed by the master key", _installation_keys),
)


async def _current_version(conn: AsyncConnection) -> int:
    rows = await conn.execute(select(schema.schema_migrations.c.version))
    return max((row.version for row in rows), default=0)


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})


async def migrate(engine: AsyncEngine) -> list[int]:
    """Apply every pending migration; returns the versions applied by this call."""
    async with engine.begin() as conn:
        await _lock(conn)
        await conn.run_sync(lambda sync: schema.schema_migrations.create(sync, checkfirst=True))
    applied: list[int] = []
    for migration in MIGRATIONS:
        async with engine.begin() as conn:
            await _lock(conn)
            if await _current_version(conn) >= migration.version:
                continue
            await migration.apply(conn)
            await conn.execute(
                schema.schema_migrations.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=int(time.time() * 1000),
                )
            )
            applied.append(migration.version)
    return applied
