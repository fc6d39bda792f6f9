"""Function versions, their encrypted secrets, and the accounts they are shared with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.clock import now_ms
from gateway.store.schema import deployments, function_authorizations, function_secrets, function_versions

FUNCTION_LEVEL = ""  # version_id of an authorization that covers every version


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    version_id: str
    function_id: str
    nca_id: str
    name: str
    status: str
    spec: dict[str, Any]
    public: bool
    created_at: int
    updated_at: int
    secret_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Authorization:
    function_id: str
    version_id: str  # FUNCTION_LEVEL for the whole function
    nca_id: str
    client_id: str


def _version(row: Any, secret_names: Iterable[str] = ()) -> FunctionVersion:
    return FunctionVersion(
        version_id=row.version_id,
        function_id=row.function_id,
        nca_id=row.nca_id,
        name=row.name,
        status=row.status,
        spec=row.spec,
        public=bool(row.public),
        created_at=row.created_at,
        updated_at=row.updated_at,
        secret_names=tuple(sorted(secret_names)),
    )


class FunctionRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, version: FunctionVersion, sealed_secrets: Sequence[tuple[str, str]]) -> None:
        """The version and its (already encrypted) secrets, in one transaction."""
        async with self._engine.begin() as conn:
            await conn.execute(
                function_versions.insert().values(
                    version_id=version.version_id,
                    function_id=version.function_id,
                    nca_id=version.nca_id,
                    name=version.name,
                    status=version.status,
                    spec=version.spec,
                    public=int(version.public),
                    created_at=version.created_at,
                    updated_at=version.updated_at,
                )
            )
            if sealed_secrets:
                await conn.execute(
                    function_secrets.insert(),
                    [
                        {"version_id": version.version_id, "name": n, "ciphertext": c, "updated_at": version.created_at}
                        for n, c in sealed_secrets
                    ],
                )

    async def get(self, function_id: str, version_id: str) -> FunctionVersion | None:
        query = select(function_versions).where(
            function_versions.c.function_id == function_id, function_versions.c.version_id == version_id
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            names = await _secret_names(conn, [version_id])
        return _version(row, names.get(version_id, ()))

    async def versions(self, function_id: str) -> list[FunctionVersion]:
        query = (
            select(function_versions)
            .where(function_versions.c.function_id == function_id)
            .order_by(function_versions.c.created_at, function_versions.c.version_id)
        )
        return await self._fetch(query)

    async def visible(self, nca_id: str, *, private: bool, authorized: bool, public: bool) -> list[FunctionVersion]:
        """Versions owned by ``nca_id``, shared with it (whole function or that version), or public."""
        conditions = []
        if private:
            conditions.append(function_versions.c.nca_id == nca_id)
        if authorized:
            shared = select(function_authorizations.c.function_id).where(
                function_authorizations.c.nca_id == nca_id, function_authorizations.c.version_id == FUNCTION_LEVEL
            )
            shared_versions = select(function_authorizations.c.version_id).where(
                function_authorizations.c.nca_id == nca_id, function_authorizations.c.version_id != FUNCTION_LEVEL
            )
            conditions.append(
                (function_versions.c.nca_id != nca_id)
                & (function_versions.c.function_id.in_(shared) | function_versions.c.version_id.in_(shared_versions))
            )
        if public:
            conditions.append((function_versions.c.public == 1) & (function_versions.c.nca_id != nca_id))
        if not conditions:
            return []
        query = (
            select(function_versions)
            .where(or_(*conditions))
            .order_by(function_versions.c.created_at, function_versions.c.version_id)
        )
        return await self._fetch(query)

    async def all_function_ids(self) -> list[str]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(function_versions.c.function_id).distinct())
        return [row.function_id for row in rows]

    async def update_spec(self, version_id: str, spec: dict[str, Any]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(function_versions)
                .where(function_versions.c.version_id == version_id)
                .values(spec=spec, updated_at=now_ms())
            )

    async def set_status(self, version_id: str, status: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(function_versions)
                .where(function_versions.c.version_id == version_id)
                .values(status=status, updated_at=now_ms())
            )

    async def delete(self, version_id: str) -> None:
        """The version with everything that hangs off it: secrets, deployment, authorizations."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(function_secrets).where(function_secrets.c.version_id == version_id))
            await conn.execute(delete(deployments).where(deployments.c.version_id == version_id))
            await conn.execute(
                delete(function_authorizations).where(function_authorizations.c.version_id == version_id)
            )
            row = (
                await conn.execute(
                    select(function_versions.c.function_id).where(function_versions.c.version_id == version_id)
                )
            ).first()
            await conn.execute(delete(function_versions).where(function_versions.c.version_id == version_id))
            if row is not None:
                left = await conn.execute(
                    select(function_versions.c.version_id).where(function_versions.c.function_id == row.function_id)
                )
                if left.first() is None:  # last version gone: function-level shares go too
                    await conn.execute(
                        delete(function_authorizations).where(function_authorizations.c.function_id == row.function_id)
                    )

    async def replace_secrets(self, version_id: str, sealed: Sequence[tuple[str, str]]) -> None:
        """Set (insert or overwrite) the given secrets of a version; others are kept."""
        now = now_ms()
        async with self._engine.begin() as conn:
            names = [name for name, _ in sealed]
            await conn.execute(
                delete(function_secrets).where(
                    function_secrets.c.version_id == version_id, function_secrets.c.name.in_(names)
                )
            )
            if sealed:
                await conn.execute(
                    function_secrets.insert(),
                    [{"version_id": version_id, "name": n, "ciphertext": c, "updated_at": now} for n, c in sealed],
                )
            await conn.execute(
                update(function_versions).where(function_versions.c.version_id == version_id).values(updated_at=now)
            )

    async def sealed_secrets(self, version_id: str) -> list[tuple[str, str]]:
        query = (
            select(function_secrets.c.name, function_secrets.c.ciphertext)
            .where(function_secrets.c.version_id == version_id)
            .order_by(function_secrets.c.name)
        )
        async with self._engine.connect() as conn:
            return [(row.name, row.ciphertext) for row in await conn.execute(query)]

    async def _fetch(self, query: Any) -> list[FunctionVersion]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            names = await _secret_names(conn, [row.version_id for row in rows])
        return [_version(row, names.get(row.version_id, ())) for row in rows]


async def _secret_names(conn: AsyncConnection, version_ids: list[str]) -> dict[str, list[str]]:
    if not version_ids:
        return {}
    names: dict[str, list[str]] = defaultdict(list)
    query = select(function_secrets.c.version_id, function_secrets.c.name).where(
        function_secrets.c.version_id.in_(version_ids)
    )
    for row in await conn.execute(query):
        names[row.version_id].append(row.name)
    return names


class AuthorizationRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self, function_id: str, version_id: str | None = None) -> list[Authorization]:
        """Shares of the function (``version_id=None``: every row, function-level and per version)."""
        query = select(function_authorizations).where(function_authorizations.c.function_id == function_id)
        if version_id is not None:
            query = query.where(function_authorizations.c.version_id == version_id)
        query = query.order_by(function_authorizations.c.created_at, function_authorizations.c.nca_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Authorization(r.function_id, r.version_id, r.nca_id, r.client_id) for r in rows]

    async def replace(self, function_id: str, version_id: str, parties: Sequence[tuple[str, str]]) -> None:
        now = now_ms()
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(function_authorizations).where(
                    function_authorizations.c.function_id == function_id,
                    function_authorizations.c.version_id == version_id,
                )
            )
            unique = list(dict.fromkeys(parties))
            if unique:
                await conn.execute(
                    function_authorizations.insert(),
                    [
                        {
                            "function_id": function_id,
                            "version_id": version_id,
                            "nca_id": n,
                            "client_id": c,
                            "created_at": now,
                        }
                        for n, c in unique
                    ],
                )

    async def add(self, function_id: str, version_id: str, nca_id: str, client_id: str) -> bool:
        existing = await self.list(function_id, version_id)
        if any(a.nca_id == nca_id and a.client_id == client_id for a in existing):
            return False
        parties = [(a.nca_id, a.client_id) for a in existing] + [(nca_id, client_id)]
        await self.replace(function_id, version_id, parties)
        return True

    async def remove(self, function_id: str, version_id: str, nca_id: str, client_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(function_authorizations).where(
                    function_authorizations.c.function_id == function_id,
                    function_authorizations.c.version_id == version_id,
                    function_authorizations.c.nca_id == nca_id,
                    function_authorizations.c.client_id == client_id,
                )
            )
        return bool(result.rowcount)


def with_secret_names(version: FunctionVersion, names: Iterable[str]) -> FunctionVersion:
    return replace(version, secret_names=tuple(sorted(names)))
