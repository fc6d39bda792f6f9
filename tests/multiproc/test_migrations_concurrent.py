"""Migrations started by several processes at the same moment on an empty PostgreSQL: each applied once."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store.engine import async_url
from gateway.store.migrations import MIGRATIONS, migrate


async def test_concurrent_migrate_applies_each_migration_once(postgres_dsn: str) -> None:
    engines = [create_async_engine(async_url(postgres_dsn)) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(engine) for engine in engines))
        async with engines[0].connect() as conn:
            recorded = list((await conn.execute(text("SELECT version FROM schema_migrations"))).scalars())
            query = text("SELECT count(*) FROM pg_tables WHERE tablename = 'function_versions'")
            tables = (await conn.execute(query)).scalar()
        again = await migrate(engines[0])
    finally:
        for engine in engines:
            await engine.dispose()
    every = [m.version for m in MIGRATIONS]
    assert sorted(v for applied in results for v in applied) == every  # none twice, none missing
    assert sorted(recorded) == every and tables == 1
    assert again == []
