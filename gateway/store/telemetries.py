"""Telemetry endpoints of an account (``telemetries`` table) and the function versions that use them.

``spec`` holds the public fields (``name``, ``endpoint``, ``protocol``, ``provider``, ``types``);
the secret is kept only as ``secret_name`` and its sealed value (``ciphertext``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.schema import function_versions, telemetries

TELEMETRY_KINDS = ("logsTelemetryId", "metricsTelemetryId", "tracesTelemetryId")


@dataclass(frozen=True, slots=True)
class Telemetry:
    telemetry_id: str
    nca_id: str
    spec: dict[str, Any]
    secret_name: str | None
    ciphertext: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class TelemetryUser:
    """A function version whose ``telemetries`` names a telemetry."""

    function_id: str
    version_id: str


def _telemetry(row: Any) -> Telemetry:
    return Telemetry(
        telemetry_id=row.telemetry_id,
        nca_id=row.nca_id,
        spec=row.spec,
        secret_name=row.secret_name,
        ciphertext=row.ciphertext,
        created_at=row.created_at,
    )


class TelemetryRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, telemetry: Telemetry) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                telemetries.insert().values(
                    telemetry_id=telemetry.telemetry_id,
                    nca_id=telemetry.nca_id,
                    spec=telemetry.spec,
                    secret_name=telemetry.secret_name,
                    ciphertext=telemetry.ciphertext,
                    created_at=telemetry.created_at,
                )
            )

    async def get(self, nca_id: str, telemetry_id: str) -> Telemetry | None:
        query = select(telemetries).where(telemetries.c.nca_id == nca_id, telemetries.c.telemetry_id == telemetry_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _telemetry(row) if row else None

    async def for_account(self, nca_id: str) -> list[Telemetry]:
        query = (
            select(telemetries)
            .where(telemetries.c.nca_id == nca_id)
            .order_by(telemetries.c.created_at, telemetries.c.telemetry_id)
        )
        async with self._engine.connect() as conn:
            return [_telemetry(row) for row in await conn.execute(query)]

    async def count(self, nca_id: str) -> int:
        query = select(func.count()).select_from(telemetries).where(telemetries.c.nca_id == nca_id)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def set_secret(self, nca_id: str, telemetry_id: str, secret_name: str, ciphertext: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(telemetries)
                .where(telemetries.c.nca_id == nca_id, telemetries.c.telemetry_id == telemetry_id)
                .values(secret_name=secret_name, ciphertext=ciphertext)
            )
        return bool(result.rowcount)

    async def delete(self, nca_id: str, telemetry_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(telemetries).where(telemetries.c.nca_id == nca_id, telemetries.c.telemetry_id == telemetry_id)
            )
        return bool(result.rowcount)

    async def users(self, nca_id: str, telemetry_id: str) -> list[TelemetryUser]:
        """The account's function versions whose ``spec.telemetries`` names this telemetry."""
        query = (
            select(function_versions.c.function_id, function_versions.c.version_id, function_versions.c.spec)
            .where(function_versions.c.nca_id == nca_id)
            .order_by(function_versions.c.created_at, function_versions.c.version_id)
        )
        wanted = telemetry_id.lower()
        found = []
        async with self._engine.connect() as conn:
            for row in await conn.execute(query):
                named = (row.spec or {}).get("telemetries") or {}
                if any(str(named.get(kind) or "").lower() == wanted for kind in TELEMETRY_KINDS):
                    found.append(TelemetryUser(row.function_id, row.version_id))
        return found
