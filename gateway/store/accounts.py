"""Accounts (NCA ids) and the client → account mapping used to resolve JWT subjects.

An account's first client is its ``admin_client_id`` column (unique in the table); clients
associated later (``PATCH …/clients/associate``) are kept in ``limits["clientIds"]``. A client
is a JWT subject *of one issuer*: ``limits["clientIssuers"]`` maps a client id to the trusted
issuer it belongs to, and a client id absent from it belongs to the gateway's own issuer (the
``None`` issuer here). A token matches the account only with both its ``sub`` and its ``iss``
(``by_client``), so another issuer's token with the same ``sub`` maps nowhere. A client
id maps to at most one account, whatever its issuer: writes that add a client take a store-wide lock (PostgreSQL
advisory lock, SQLite write lock) so two concurrent associations cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.clock import now_ms
from gateway.store.schema import (
    accounts,
    assets,
    function_authorizations,
    function_versions,
    registry_credentials,
    telemetries,
)

CLIENT_IDS = "clientIds"
CLIENT_ISSUERS = "clientIssuers"
# pg_advisory_xact_lock key serialising client-mapping writes ("cfgacct" in ASCII).
_LOCK_KEY = 0x63666761636374


@dataclass(frozen=True, slots=True)
class Account:
    nca_id: str
    name: str
    admin_client_id: str | None
    limits: dict[str, Any]
    created_at: int
    updated_at: int

    @property
    def client_ids(self) -> list[str]:
        """Every client id mapped to this account, the admin client first."""
        extra = [c for c in self.limits.get(CLIENT_IDS) or [] if isinstance(c, str)]
        return ([self.admin_client_id] if self.admin_client_id else []) + extra

    def client_issuer(self, client_id: str) -> str | None:
        """The trusted issuer whose tokens the client is a subject of; ``None``: the gateway's own."""
        issuers = self.limits.get(CLIENT_ISSUERS)
        issuer = issuers.get(client_id) if isinstance(issuers, dict) else None
        return issuer if isinstance(issuer, str) else None


def _with_issuer(limits: dict[str, Any], client_id: str, issuer: str | None) -> dict[str, Any]:
    """``limits`` with the client's issuer recorded (``None``: the gateway's own, not stored)."""
    current = limits.get(CLIENT_ISSUERS)
    issuers = {k: v for k, v in current.items() if k != client_id} if isinstance(current, dict) else {}
    if issuer is not None:
        issuers[client_id] = issuer
    updated = {k: v for k, v in limits.items() if k != CLIENT_ISSUERS}
    if issuers:
        updated[CLIENT_ISSUERS] = issuers
    return updated


class AccountError(Exception):
    """A write the account store refuses; the message is safe to show to the caller."""


class AccountNotFound(AccountError):
    pass


class AccountExists(AccountError):
    pass


class ClientTaken(AccountError):
    def __init__(self, message: str, owner: str) -> None:
        super().__init__(message)
        self.owner = owner


class ClientNotAssociated(AccountError):
    pass


class AccountInUse(AccountError):
    pass


@dataclass(slots=True)
class DeletedAccount:
    account: Account
    asset_ids: list[str] = field(default_factory=list)


def _account(row: Any) -> Account:
    return Account(**row._asdict())


class AccountRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, nca_id: str) -> Account | None:
        async with self._engine.connect() as conn:
            return await self._get(conn, nca_id)

    async def list_all(self) -> list[Account]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(accounts).order_by(accounts.c.created_at, accounts.c.nca_id))).all()
        return [_account(row) for row in rows]

    async def by_admin_client(self, client_id: str) -> Account | None:
        """The account a client id is mapped to (its admin client or one associated later), any issuer."""
        async with self._engine.connect() as conn:
            return await self._owner(conn, client_id)

    async def by_client(self, subject: str, issuer: str | None) -> Account | None:
        """The account a JWT of ``issuer`` (``None``: the gateway's own) with ``sub=subject`` acts for."""
        account = await self.by_admin_client(subject)
        if account is None or account.client_issuer(subject) != issuer:
            return None
        return account

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

    async def create(
        self,
        nca_id: str,
        name: str,
        admin_client_id: str | None,
        limits: dict[str, Any],
        admin_client_issuer: str | None = None,
    ) -> Account:
        """Insert a new account; ``ClientTaken`` / ``AccountExists`` (NVCF checks the client first)."""
        now = now_ms()
        if admin_client_id:
            limits = _with_issuer(limits, admin_client_id, admin_client_issuer)
        try:
            async with self._engine.begin() as conn:
                await self._lock(conn)
                if admin_client_id:
                    owner = await self._owner(conn, admin_client_id)
                    if owner is not None:
                        raise ClientTaken(f"Client with id '{admin_client_id}' already exists", owner.nca_id)
                if await self._get(conn, nca_id) is not None:
                    raise AccountExists(f"Account with ncaId '{nca_id}' already exists")
                await conn.execute(
                    accounts.insert().values(
                        nca_id=nca_id,
                        name=name,
                        admin_client_id=admin_client_id or None,
                        limits=limits,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise AccountExists(f"Account with ncaId '{nca_id}' already exists") from None
        return Account(nca_id, name, admin_client_id or None, limits, now, now)

    async def update(self, nca_id: str, name: str | None, limits_patch: dict[str, Any]) -> Account:
        async with self._engine.begin() as conn:
            account = await self._require(conn, nca_id)
            values: dict[str, Any] = {"limits": {**account.limits, **limits_patch}, "updated_at": now_ms()}
            if name:
                values["name"] = name
            await conn.execute(update(accounts).where(accounts.c.nca_id == nca_id).values(**values))
            updated = await self._get(conn, nca_id)
        assert updated is not None
        return updated

    async def associate(self, nca_id: str, client_id: str, issuer: str | None = None) -> Account:
        async with self._engine.begin() as conn:
            await self._lock(conn)
            owner = await self._owner(conn, client_id)
            if owner is not None:
                raise ClientTaken(
                    f"Client '{client_id}' already associated with NVIDIA Cloud Account '{owner.nca_id}'", owner.nca_id
                )
            account = await self._require(conn, nca_id)
            limits = _with_issuer(account.limits, client_id, issuer)
            values: dict[str, Any] = {"updated_at": now_ms(), "limits": limits}
            if account.admin_client_id is None:
                values["admin_client_id"] = client_id
            else:
                extra = [c for c in account.client_ids[1:] if c != client_id]
                values["limits"] = {**limits, CLIENT_IDS: [*extra, client_id]}
            await conn.execute(update(accounts).where(accounts.c.nca_id == nca_id).values(**values))
            updated = await self._get(conn, nca_id)
        assert updated is not None
        return updated

    async def disassociate(self, nca_id: str, client_id: str) -> Account:
        async with self._engine.begin() as conn:
            await self._lock(conn)
            if await self._owner(conn, client_id) is None:
                raise AccountNotFound(f"Client '{client_id}' not found")
            account = await self._require(conn, nca_id)
            if client_id not in account.client_ids:
                raise ClientNotAssociated(
                    f"Client '{client_id}' is not associated with NVIDIA Cloud Account '{nca_id}'"
                )
            limits = _with_issuer(account.limits, client_id, None)
            values: dict[str, Any] = {"updated_at": now_ms(), "limits": limits}
            if account.admin_client_id == client_id:
                values["admin_client_id"] = None
            else:
                remaining = [c for c in account.limits.get(CLIENT_IDS) or [] if c != client_id]
                values["limits"] = {**limits, CLIENT_IDS: remaining}
            await conn.execute(update(accounts).where(accounts.c.nca_id == nca_id).values(**values))
            updated = await self._get(conn, nca_id)
        assert updated is not None
        return updated

    async def delete(self, nca_id: str) -> DeletedAccount:
        """Delete an account that owns no function and is not shared any; also its telemetries,
        registry credentials and asset rows (the caller removes the asset blobs)."""
        async with self._engine.begin() as conn:
            await self._lock(conn)
            account = await self._require(conn, nca_id)
            owned = select(func.count()).select_from(function_versions).where(function_versions.c.nca_id == nca_id)
            if (await conn.execute(owned)).scalar_one():
                raise AccountInUse(f"Account '{nca_id}': Cannot delete account with functions defined")
            shared = (
                select(func.count())
                .select_from(function_authorizations)
                .where(function_authorizations.c.nca_id == nca_id)
            )
            if (await conn.execute(shared)).scalar_one():
                raise AccountInUse(f"Account '{nca_id}': Cannot delete account with functions authorized")
            asset_ids = list((await conn.execute(select(assets.c.asset_id).where(assets.c.nca_id == nca_id))).scalars())
            await conn.execute(delete(assets).where(assets.c.nca_id == nca_id))
            await conn.execute(delete(telemetries).where(telemetries.c.nca_id == nca_id))
            await conn.execute(delete(registry_credentials).where(registry_credentials.c.nca_id == nca_id))
            await conn.execute(delete(accounts).where(accounts.c.nca_id == nca_id))
        return DeletedAccount(account, asset_ids)

    async def count_functions(self, nca_id: str) -> int:
        """How many functions (not versions) the account owns."""
        query = select(func.count(func.distinct(function_versions.c.function_id))).where(
            function_versions.c.nca_id == nca_id
        )
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _get(self, conn: AsyncConnection, nca_id: str) -> Account | None:
        row = (await conn.execute(select(accounts).where(accounts.c.nca_id == nca_id))).first()
        return _account(row) if row else None

    async def _require(self, conn: AsyncConnection, nca_id: str) -> Account:
        account = await self._get(conn, nca_id)
        if account is None:
            raise AccountNotFound(f"Account with ncaId '{nca_id}' not found")
        return account

    async def _owner(self, conn: AsyncConnection, client_id: str) -> Account | None:
        row = (await conn.execute(select(accounts).where(accounts.c.admin_client_id == client_id))).first()
        if row:
            return _account(row)
        # Associated clients live in the limits JSON: the table holds a handful of accounts, and
        # this runs once per JWT before its principal is cached.
        for row in (await conn.execute(select(accounts))).all():
            account = _account(row)
            if client_id in account.client_ids:
                return account
        return None

    async def _lock(self, conn: AsyncConnection) -> None:
        """Serialise client-mapping writes so the uniqueness checks that follow cannot race."""
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        else:
            # SQLite: a first write takes the database write lock, so what is read next is current.
            await conn.execute(update(accounts).where(accounts.c.nca_id == "").values(updated_at=0))
