"""NVCT task records: tasks, their events and results, and their sealed secrets.

Status changes are conditional updates (``WHERE status IN (…)``) so that two gateway nodes, or a
worker report racing a cancel, cannot both move a task: the loser sees ``False`` and does
nothing. Each change writes its event in the same transaction. Pages are keyset-paginated:
tasks newest first by ``(created_at, task_id)``, events and results oldest first by ``seq``.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.schema import task_events, task_results, task_secrets, tasks

_counter = itertools.count()


def next_seq() -> int:
    """Increasing within a process, and across processes to the millisecond (ties: any order)."""
    return time.time_ns() // 1_000_000 * 1000 + next(_counter) % 1000


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    nca_id: str
    name: str
    status: str
    spec: dict[str, Any]
    percent_complete: int | None
    instance: dict[str, Any] | None
    created_at: int
    updated_at: int
    launched_at: int | None
    last_heartbeat_at: int | None
    last_progress_at: int | None


@dataclass(frozen=True, slots=True)
class TaskEvent:
    event_id: str
    task_id: str
    nca_id: str
    message: str
    seq: int
    created_at: int


@dataclass(frozen=True, slots=True)
class TaskResult:
    result_id: str
    task_id: str
    nca_id: str
    name: str
    metadata: dict[str, Any]
    seq: int
    created_at: int


def _task(row: Any) -> Task:
    return Task(**{name: getattr(row, name) for name in Task.__slots__})


async def _event(conn: AsyncConnection, task_id: str, nca_id: str, message: str, at: int) -> None:
    await conn.execute(
        task_events.insert().values(
            event_id=str(uuid.uuid4()), task_id=task_id, nca_id=nca_id, message=message, seq=next_seq(), created_at=at
        )
    )


class TaskRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, task: Task, sealed: Sequence[tuple[str, str]], message: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(tasks.insert().values(**{n: getattr(task, n) for n in Task.__slots__}))
            for name, ciphertext in sealed:
                await conn.execute(
                    task_secrets.insert().values(
                        task_id=task.task_id, name=name, ciphertext=ciphertext, updated_at=task.created_at
                    )
                )
            await _event(conn, task.task_id, task.nca_id, message, task.created_at)

    async def get(self, task_id: str, nca_id: str | None = None) -> Task | None:
        query = select(tasks).where(tasks.c.task_id == task_id)
        if nca_id is not None:
            query = query.where(tasks.c.nca_id == nca_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _task(row) if row else None

    async def page(
        self, nca_id: str, limit: int, after: tuple[int, str] | None, status: str | None = None
    ) -> list[Task]:
        """Up to ``limit + 1`` tasks, newest first, older than ``after`` (the extra row says "more")."""
        query = select(tasks).where(tasks.c.nca_id == nca_id)
        if status is not None:
            query = query.where(tasks.c.status == status)
        if after is not None:
            created, task_id = after
            query = query.where(
                or_(tasks.c.created_at < created, and_(tasks.c.created_at == created, tasks.c.task_id < task_id))
            )
        query = query.order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc()).limit(limit + 1)
        async with self._engine.connect() as conn:
            return [_task(row) for row in await conn.execute(query)]

    async def many(self, nca_id: str, task_ids: Iterable[str]) -> list[Task]:
        ids = list(task_ids)
        query = select(tasks).where(tasks.c.nca_id == nca_id, tasks.c.task_id.in_(ids))
        async with self._engine.connect() as conn:
            found = {row.task_id: _task(row) for row in await conn.execute(query)}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def of_account_with_status(self, nca_id: str, statuses: Sequence[str]) -> list[Task]:
        query = select(tasks).where(tasks.c.nca_id == nca_id, tasks.c.status.in_(list(statuses)))
        async with self._engine.connect() as conn:
            return [_task(row) for row in await conn.execute(query)]

    async def with_status(self, statuses: Sequence[str], limit: int = 1000) -> list[Task]:
        query = (
            select(tasks)
            .where(tasks.c.status.in_(list(statuses)))
            .order_by(tasks.c.created_at, tasks.c.task_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_task(row) for row in await conn.execute(query)]

    async def transition(
        self, task_id: str, from_statuses: Sequence[str], to_status: str, message: str, **values: Any
    ) -> bool:
        """Move the task to ``to_status`` if it is in one of ``from_statuses``; False otherwise."""
        at = int(time.time() * 1000)
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id, tasks.c.status.in_(list(from_statuses)))
                .values(status=to_status, updated_at=at, **values)
                .returning(tasks.c.nca_id)
            )
            row = result.first()
            if row is None:
                return False
            await _event(conn, task_id, row.nca_id, message, at)
        return True

    async def progress(
        self, task_id: str, statuses: Sequence[str], percent: int, progress_at: int | None, message: str | None
    ) -> bool:
        at = int(time.time() * 1000)
        values: dict[str, Any] = {"percent_complete": percent, "updated_at": at, "last_heartbeat_at": at}
        if progress_at:
            values["last_progress_at"] = progress_at
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(tasks)
                .where(tasks.c.task_id == task_id, tasks.c.status.in_(list(statuses)))
                .values(**values)
                .returning(tasks.c.nca_id)
            )
            row = result.first()
            if row is None:
                return False
            if message:
                await _event(conn, task_id, row.nca_id, message, at)
        return True

    async def heartbeat(self, task_ids: Sequence[str], at: int) -> None:
        if not task_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(update(tasks).where(tasks.c.task_id.in_(list(task_ids))).values(last_heartbeat_at=at))

    async def add_event(self, task_id: str, nca_id: str, message: str) -> None:
        async with self._engine.begin() as conn:
            await _event(conn, task_id, nca_id, message, int(time.time() * 1000))

    async def events(self, task_id: str, limit: int, after: int | None) -> list[TaskEvent]:
        query = select(task_events).where(task_events.c.task_id == task_id)
        if after is not None:
            query = query.where(task_events.c.seq > after)
        query = query.order_by(task_events.c.seq, task_events.c.event_id).limit(limit + 1)
        async with self._engine.connect() as conn:
            return [TaskEvent(**row._asdict()) for row in await conn.execute(query)]

    async def add_result(self, task_id: str, nca_id: str, name: str, metadata: dict[str, Any]) -> bool:
        """Record a result once per name; False when the task already has one of that name."""
        async with self._engine.begin() as conn:
            exists = await conn.execute(
                select(task_results.c.result_id).where(task_results.c.task_id == task_id, task_results.c.name == name)
            )
            if exists.first() is not None:
                return False
            at = int(time.time() * 1000)
            await conn.execute(
                task_results.insert().values(
                    result_id=str(uuid.uuid4()),
                    task_id=task_id,
                    nca_id=nca_id,
                    name=name,
                    metadata=metadata,
                    seq=next_seq(),
                    created_at=at,
                )
            )
        return True

    async def results(self, task_id: str, limit: int, after: int | None) -> list[TaskResult]:
        query = select(task_results).where(task_results.c.task_id == task_id)
        if after is not None:
            query = query.where(task_results.c.seq > after)
        query = query.order_by(task_results.c.seq, task_results.c.result_id).limit(limit + 1)
        async with self._engine.connect() as conn:
            return [TaskResult(**row._asdict()) for row in await conn.execute(query)]

    async def secret_names(self, task_id: str) -> list[str]:
        query = select(task_secrets.c.name).where(task_secrets.c.task_id == task_id).order_by(task_secrets.c.name)
        async with self._engine.connect() as conn:
            return [row.name for row in await conn.execute(query)]

    async def sealed_secrets(self, task_id: str) -> list[tuple[str, str]]:
        query = select(task_secrets).where(task_secrets.c.task_id == task_id).order_by(task_secrets.c.name)
        async with self._engine.connect() as conn:
            return [(row.name, row.ciphertext) for row in await conn.execute(query)]

    async def merge_secrets(self, task_id: str, sealed: Sequence[tuple[str, str]]) -> None:
        at = int(time.time() * 1000)
        names = [name for name, _ in sealed]
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(task_secrets).where(task_secrets.c.task_id == task_id, task_secrets.c.name.in_(names))
            )
            for name, ciphertext in sealed:
                await conn.execute(
                    task_secrets.insert().values(task_id=task_id, name=name, ciphertext=ciphertext, updated_at=at)
                )

    async def delete(self, task_id: str) -> bool:
        async with self._engine.begin() as conn:
            for table in (task_events, task_results, task_secrets):
                await conn.execute(delete(table).where(table.c.task_id == task_id))
            result = await conn.execute(delete(tasks).where(tasks.c.task_id == task_id))
        return bool(result.rowcount)
