"""NICo's tables (SQLAlchemy Core, migration 5): every entity in one typed-column table, its
status history beside it, and the IPAM prefixes carved out of IP blocks.

One table for all entities keeps the relations the handlers query on (owner org, provider,
tenant, site, parent) as indexed columns and the rest of the wire shape as a JSON document;
``unique_key`` (kind, scope and name) makes the store enforce NICo's per-scope name uniqueness.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.schema import metadata

nico_objects = Table(
    "nico_objects",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("org", String(128), nullable=False),
    Column("provider_id", String(36), nullable=True),
    Column("tenant_id", String(36), nullable=True),
    Column("site_id", String(36), nullable=True),
    Column("parent_id", String(80), nullable=True),
    Column("name", String(256), nullable=True),
    # "<kind>:<scope>:<name>" where the name must be unique within the scope; NULL otherwise.
    Column("unique_key", Text, nullable=True, unique=True),
    Column("status", String(32), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_nico_objects_kind_org", "kind", "org"),
    Index("ix_nico_objects_parent", "parent_id"),
    Index("ix_nico_objects_site", "site_id"),
)

nico_status_history = Table(
    "nico_status_history",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("object_id", String(80), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_nico_status_history_object", "object_id"),
)

# A prefix handed out by IPAM: ``owner_id`` (a tenant IP block, subnet or VPC prefix) holds
# ``cidr`` inside the block ``pool_id``. Deleting the owner releases it.
nico_prefixes = Table(
    "nico_prefixes",
    metadata,
    Column("owner_id", String(80), primary_key=True),
    Column("pool_id", String(80), nullable=False),
    Column("cidr", String(64), nullable=False),
    Index("ix_nico_prefixes_pool", "pool_id"),
)

NICO_TABLES = (nico_objects, nico_status_history, nico_prefixes)


async def create_nico_tables(conn: AsyncConnection) -> None:
    def create(sync: Any) -> None:
        for table in NICO_TABLES:
            table.create(sync, checkfirst=True)

    await conn.run_sync(create)
