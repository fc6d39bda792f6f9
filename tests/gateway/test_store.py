"""The SQL store on SQLite and PostgreSQL: versioned migrations, concurrent starts, repositories."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select

from gateway.store import open_store
from gateway.store.accounts import AccountRepository
from gateway.store.apikeys import ApiKeyRecord, ApiKeyRepository
from gateway.store.engine import StoreError, async_url
from gateway.store.migrations import MIGRATIONS
from gateway.store.schema import schema_migrations


def test_async_url_mapping() -> None:
    assert async_url("postgresql://u@127.0.0.1:5/db").startswith("postgresql+asyncpg://u@127.0.0.1:5/db")
    assert async_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    with pytest.raises(StoreError):
        async_url("mysql://u@h/db")


async def test_migrations_recorded_once(database_url: str) -> None:
    store = await open_store(database_url)
    await store.close()
    store = await open_store(database_url)  # second start: nothing to apply
    try:
        async with store.engine.connect() as conn:
            versions = [r.version for r in await conn.execute(select(schema_migrations))]
        assert versions == [m.version for m in MIGRATIONS]
    finally:
        await store.close()


async def test_concurrent_starts_apply_migrations_once(database_url: str) -> None:
    stores = await asyncio.gather(*(open_store(database_url) for _ in range(4)))
    try:
        async with stores[0].engine.connect() as conn:
            versions = [r.version for r in await conn.execute(select(schema_migrations))]
        assert versions == [m.version for m in MIGRATIONS]
    finally:
        for store in stores:
            await store.close()


async def test_account_ensure_is_idempotent(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        repo = AccountRepository(store.engine)
        first, second = await asyncio.gather(
            repo.ensure("acme", "acme", "client-a"), repo.ensure("acme", "acme", "client-a")
        )
        assert first.nca_id == second.nca_id == "acme"
        assert (await repo.by_admin_client("client-a")) == first
        assert await repo.by_admin_client("client-b") is None
    finally:
        await store.close()


async def test_clients_are_matched_with_their_issuer(database_url: str) -> None:
    """A client id belongs to one issuer (``None``: the gateway's own); ``by_client`` needs both."""
    store = await open_store(database_url)
    try:
        repo = AccountRepository(store.engine)
        await repo.ensure("local", "local", "local-admin")
        await repo.create("team-b", "team-b", "b-admin", {}, "https://idp-b")
        assert (await repo.by_client("local-admin", None)) == await repo.get("local")
        assert await repo.by_client("local-admin", "https://idp-b") is None
        assert await repo.by_client("b-admin", None) is None
        account = await repo.by_client("b-admin", "https://idp-b")
        assert account is not None and account.nca_id == "team-b"
        await repo.associate("team-b", "b-ops", "https://idp-c")
        assert await repo.by_client("b-ops", "https://idp-b") is None
        assert (await repo.by_client("b-ops", "https://idp-c")) is not None
        await repo.disassociate("team-b", "b-ops")
        await repo.associate("local", "b-ops")  # the issuer entry went with the client
        assert await repo.by_client("b-ops", "https://idp-c") is None
        assert (await repo.by_client("b-ops", None)) == await repo.get("local")
    finally:
        await store.close()


async def test_api_key_repository_round_trip(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        repo = ApiKeyRepository(store.engine)
        now = int(time.time() * 1000)
        record = ApiKeyRecord(
            id=str(uuid.uuid4()),
            key_hash="ab" * 32,
            nca_id="acme",
            owner_id="o",
            owner_type="USER",
            issuer_service_id="svc",
            audience_service_ids=["svc"],
            description="d",
            status="ACTIVE",
            authorizations={"policies": [{"scopes": ["invoke_function"]}]},
            created_at=now,
            expires_at=now + 1000,
        )
        await repo.insert(record)
        assert await repo.get(record.id) == record
        assert await repo.by_hash("ab" * 32) == record
        assert await repo.list_for_owner("svc", "o") == [record]
        updated = await repo.set_authorizations(record.id, {"policies": []})
        assert updated is not None and updated.authorizations == {"policies": []}
        assert await repo.delete(record.id) is True
        assert await repo.delete(record.id) is False
        assert await repo.count() == 0
    finally:
        await store.close()
