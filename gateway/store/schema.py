"""Table definitions (SQLAlchemy Core). Times are integer epoch milliseconds: portable and exact."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("nca_id", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("admin_client_id", String(128), nullable=True, unique=True),
    Column("limits", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    # sha256 of the key: the value itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("nca_id", String(64), nullable=False),
    Column("owner_id", String(256), nullable=False),
    Column("owner_type", String(16), nullable=False),
    Column("issuer_service_id", String(128), nullable=False),
    Column("audience_service_ids", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("authorizations", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_api_keys_owner", "issuer_service_id", "owner_id"),
)
