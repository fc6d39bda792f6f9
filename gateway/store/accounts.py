"""Accounts (NCA ids) and the admin-client → account mapping used to resolve JWT subjects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.clock import now_ms
from gateway.store.schema import accounts


@dataclass(frozen=True, slots=True)
class Account:
    nca_id: str
    name: str
    admin_client_id: str | None
    limits: dict[str, Any]
    created_at: int
    updated_at: int


class AccountRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, nca_id: str) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.nca_id == nca_id))).first()
        return Account(**row._asdict()) if row else None

    async def by_admin_client(self, client_id: str) -> Account | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(accounts).where(accounts.c.admin_client_id == client_id))).first()
        return Account(**row._asdict()) if row else None

    async def ensure(self, nca_id: str, name: str, admin_client_id: str) -> Account:
        """Create the account unless it exists (idempotent; safe across concurrent starters)."""
        existing = await self.get(nca_id)
        if existing:
            return existing
        now = now_ms()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    accounts.insert().values(
                        nca_id=nca_id,
                        name=name,
                        admin_client_id=admin_client_id,
                        limits={},
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # another process created it first
        account = await self.get(nca_id)
        assert account is not None
        return account
