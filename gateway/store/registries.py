"""Registry credentials of an account (``registry_credentials`` table).

``spec`` holds the public fields (``registryName``, ``registryHostname``, ``artifactTypes``,
``tags``, ``description``, ``provisionedBy``); the secret is kept only as ``secret_name`` (the
credential's name) and its sealed value (``ciphertext``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import registry_credentials


@dataclass(frozen=True, slots=True)
class RegistryCredential:
    credential_id: str
    nca_id: str
    spec: dict[str, Any]
    secret_name: str
    ciphertext: str
    created_at: int
    updated_at: int


def _credential(row: Any) -> RegistryCredential:
    return RegistryCredential(
        credential_id=row.credential_id,
        nca_id=row.nca_id,
        spec=row.spec,
        secret_name=row.secret_name,
        ciphertext=row.ciphertext,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class RegistryCredentialRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, credential: RegistryCredential) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                registry_credentials.insert().values(
                    credential_id=credential.credential_id,
                    nca_id=credential.nca_id,
                    spec=credential.spec,
                    secret_name=credential.secret_name,
                    ciphertext=credential.ciphertext,
                    created_at=credential.created_at,
                    updated_at=credential.updated_at,
                )
            )

    async def get(self, nca_id: str, credential_id: str) -> RegistryCredential | None:
        query = select(registry_credentials).where(
            registry_credentials.c.nca_id == nca_id, registry_credentials.c.credential_id == credential_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _credential(row) if row else None

    async def for_account(self, nca_id: str) -> list[RegistryCredential]:
        query = (
            select(registry_credentials)
            .where(registry_credentials.c.nca_id == nca_id)
            .order_by(registry_credentials.c.created_at, registry_credentials.c.credential_id)
        )
        async with self._engine.connect() as conn:
            return [_credential(row) for row in await conn.execute(query)]

    async def count(self, nca_id: str) -> int:
        query = select(func.count()).select_from(registry_credentials).where(registry_credentials.c.nca_id == nca_id)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def update(self, credential: RegistryCredential) -> None:
        """Store the credential's spec, secret and ``updated_at`` as given."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(registry_credentials)
                .where(
                    registry_credentials.c.nca_id == credential.nca_id,
                    registry_credentials.c.credential_id == credential.credential_id,
                )
                .values(
                    spec=credential.spec,
                    secret_name=credential.secret_name,
                    ciphertext=credential.ciphertext,
                    updated_at=credential.updated_at,
                )
            )

    async def delete(self, nca_id: str, credential_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(registry_credentials).where(
                    registry_credentials.c.nca_id == nca_id, registry_credentials.c.credential_id == credential_id
                )
            )
        return bool(result.rowcount)
