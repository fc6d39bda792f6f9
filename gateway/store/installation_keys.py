"""The installation's shared keys as stored: sealed signing keys and the sealed sealing key.

Rows hold only ciphertext (sealed by the master key, ``gateway.auth.installation``); this module
neither sees nor needs the master key.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, exists, insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import installation_keys

SIGNING, SEALING = "signing", "sealing"
SEALING_NAME = "sealing-key"
FIRST_KEY_LOCK_ID = 0x0CF6A7F  # arbitrary, constant: serialises gateways creating the first key


@dataclass(frozen=True, slots=True)
class SealedKey:
    name: str
    created_at_ms: int
    sealed: str


class InstallationKeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def signing_keys(self) -> list[SealedKey]:
        query = select(installation_keys).where(installation_keys.c.kind == SIGNING)
        async with self._engine.connect() as conn:
            return [SealedKey(r.name, r.created_at, r.sealed) for r in await conn.execute(query)]

    async def add_signing_key(self, key: SealedKey) -> bool:
        """False if a key of that name is stored already (another process imported it first)."""
        return await self._insert(SIGNING, key)

    async def add_first_signing_key(self, key: SealedKey) -> bool:
        """Store ``key`` only if no signing key is stored: gateways starting together on an empty
        store agree on one first key (PostgreSQL: under an advisory lock; SQLite: one statement,
        which runs under the database's write lock)."""
        stored = select(installation_keys.c.name).where(installation_keys.c.kind == SIGNING)
        values = select(literal(key.name), literal(SIGNING), literal(key.created_at_ms), literal(key.sealed))
        query = insert(installation_keys).from_select(
            ["name", "kind", "created_at", "sealed"], values.where(~exists(stored))
        )
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": FIRST_KEY_LOCK_ID})
            return (await conn.execute(query)).rowcount == 1

    async def drop_signing_keys(self, names: Collection[str]) -> None:
        if not names:
            return
        query = delete(installation_keys).where(
            installation_keys.c.kind == SIGNING, installation_keys.c.name.in_(list(names))
        )
        async with self._engine.begin() as conn:
            await conn.execute(query)

    async def sealing_key(self) -> SealedKey | None:
        query = select(installation_keys).where(installation_keys.c.name == SEALING_NAME)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return SealedKey(row.name, row.created_at, row.sealed) if row is not None else None

    async def offer_sealing_key(self, key: SealedKey) -> SealedKey:
        """Store ``key`` unless one is stored already; either way, the one every gateway uses."""
        await self._insert(SEALING, key)
        stored = await self.sealing_key()
        assert stored is not None, "the sealing key was just stored"
        return stored

    async def _insert(self, kind: str, key: SealedKey) -> bool:
        row = {"name": key.name, "kind": kind, "created_at": key.created_at_ms, "sealed": key.sealed}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(installation_keys.insert().values(**row))
        except IntegrityError:
            return False
        return True
