"""Opening the SQL store: URL normalisation, SQLite pragmas, migrations on start.

A SQLite store is private to the gateway's user: its directory is created 0700, and the database
file is created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the database
file's mode); a database created otherwise (an older version, another tool) is made 0600 on open.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.private_files import make_private_dir, open_private, restrict
from gateway.store.migrations import migrate

log = logging.getLogger("gateway.store")


class StoreError(Exception):
    """The store cannot be opened or used as configured."""


def async_url(url: str) -> str:
    """Map the URLs operators write (``postgresql://…``, ``sqlite:///…``) to async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///path or postgresql://…")


@dataclass(slots=True)
class Store:
    engine: AsyncEngine
    dialect: str

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; busy_timeout waits out a concurrent writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_files(database: Path) -> list[Path]:
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def _private_sqlite_file(database: Path) -> None:
    """The database's directory 0700 (if created here) and the file itself 0600 before first use."""
    make_private_dir(database.parent)
    os.close(open_private(database, os.O_RDWR))  # an empty file is an empty SQLite database


@asynccontextmanager
async def _file_lock(path: Path | None) -> AsyncIterator[None]:
    """Serialise SQLite migrations across processes (PostgreSQL uses an advisory lock instead)."""
    if path is None:
        yield
        return
    with os.fdopen(open_private(path, os.O_RDWR), "r+b") as handle:
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


async def open_store(url: str) -> Store:
    """Create the engine and apply pending migrations (safe when several processes start at once)."""
    full = async_url(url)
    parsed = make_url(full)
    kwargs: dict[str, Any] = {}
    lock_path: Path | None = None
    database: Path | None = None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            _private_sqlite_file(database)
            lock_path = Path(parsed.database + ".migrate.lock")
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(full, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    try:
        async with _file_lock(lock_path):
            applied = await migrate(engine)
    except Exception:
        await engine.dispose()
        raise
    if database is not None:
        for path in _sqlite_files(database):
            restrict(path)
    if applied:
        log.info("store: applied migrations %s", applied)
    return Store(engine=engine, dialect=parsed.get_backend_name())
