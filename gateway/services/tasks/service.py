"""What the ``/v1/nvct`` endpoints do, over the task repository and the scheduler.

Rules (reference §10, §17): tasks are per account (another account's task is 404, like an
unknown one); cancelling a task that already ended is 400; deleting a task that is still on a
worker cancels it there first (SIGTERM, then SIGKILL after its grace period) and then removes
it with its events, results and secrets (204). Secrets are sealed with the secret box (context
``task-secret:<taskId>:<name>``); only their names are ever shown, and only with
``includeSecrets=true``. The admin mirrors (``/v1/nvct/accounts/{ncaId}/…``) do the same in the
account of the path.
"""

from __future__ import annotations

import inspect
import uuid
from typing import TYPE_CHECKING, Any

from gateway.api import Call
from gateway.problems import BadRequest, GatewayError, NotFound
from gateway.services.functions.secrets import secret_text
from gateway.services.tasks.dto import event_dto, page, result_dto, seq_cursor, task_cursor, task_dto
from gateway.services.tasks.models import (
    ACTIVE,
    BulkTasksRequest,
    CreateTaskRequest,
    GetTaskQuery,
    ListTasksQuery,
    PageQuery,
    TaskStatus,
    UpdateTaskSecretsRequest,
)
from gateway.services.tasks.scheduler import TaskScheduler, secret_context
from gateway.store.clock import now_ms
from gateway.store.tasks import Task, TaskRepository

if TYPE_CHECKING:
    from gateway.auth.secretbox import SecretBox


class TaskService:
    def __init__(self, repository: TaskRepository, scheduler: TaskScheduler) -> None:
        self.repository = repository
        self.scheduler = scheduler

    async def account(self, call: Call) -> str:
        """The caller's account, or for the admin mirrors the ``{ncaId}`` of the path (404 if unknown)."""
        nca_id = call.path.get("ncaId")
        if nca_id is None:
            return call.nca_id
        if await call.runtime.accounts.get(nca_id) is None:
            raise NotFound(f"Unknown account '{nca_id}'")
        return nca_id

    async def _own(self, call: Call) -> Task:
        task_id = call.path["taskId"]
        nca_id = await self.account(call)
        task = await self.repository.get(task_id, nca_id)
        if task is None:
            raise NotFound(f"Task '{task_id}' not found in account '{nca_id}'")
        return task

    async def create(self, call: Call) -> dict[str, Any]:
        request: CreateTaskRequest = call.body
        nca_id = await self.account(call)
        gpu = request.gpuSpecification
        try:
            checked = call.runtime.task_gpu_validator(nca_id, gpu.model_dump(mode="json", exclude_none=True))
            if inspect.isawaitable(checked):
                await checked
        except GatewayError:
            raise
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        task_id = str(uuid.uuid4())
        spec = request.dump()
        spec.pop("secrets", None)
        spec.pop("name", None)
        box: SecretBox = call.runtime.secretbox
        sealed = [(s.name, box.seal(secret_text(s), secret_context(task_id, s.name))) for s in request.secrets or []]
        at = now_ms()
        task = Task(task_id, nca_id, request.name, TaskStatus.QUEUED, spec, None, None, at, at, None, None, None)
        await self.repository.insert(task, sealed, "Task created and queued")
        self.scheduler.kick()
        return {"task": task_dto(task, [n for n, _ in sealed] if sealed else None)}

    async def list(self, call: Call) -> dict[str, Any]:
        query: ListTasksQuery = call.query
        status = query.status.value if query.status else None
        rows = await self.repository.page(await self.account(call), query.limit, task_cursor(query.cursor), status)
        shown = rows[: query.limit]
        last = f"{shown[-1].created_at}:{shown[-1].task_id}" if shown else ""
        return page("tasks", [task_dto(t) for t in shown], query.limit, len(rows) > query.limit, last)

    async def bulk(self, call: Call) -> dict[str, Any]:
        request: BulkTasksRequest = call.body
        ids = [str(uuid.UUID(i)) for i in request.taskIds]
        return {"tasks": [task_dto(t) for t in await self.repository.many(await self.account(call), ids)]}

    async def get(self, call: Call) -> dict[str, Any]:
        query: GetTaskQuery = call.query
        task = await self._own(call)
        names = await self.repository.secret_names(task.task_id) if query.includeSecrets else None
        return {"task": task_dto(task, names)}

    async def _cancel(self, task: Task, message: str) -> bool:
        canceled = await self.repository.transition(task.task_id, ACTIVE, TaskStatus.CANCELED, message)
        if canceled:
            self.scheduler.stop_everywhere(task.task_id, "canceled")
            self.scheduler.kick()
        return canceled

    async def cancel(self, call: Call) -> dict[str, Any]:
        task = await self._own(call)
        if task.status not in ACTIVE or not await self._cancel(task, "Task canceled"):
            current = await self.repository.get(task.task_id)
            status = current.status if current else "deleted"
            raise BadRequest(f"Task '{task.task_id}' cannot be canceled: its status is {status}")
        current = await self.repository.get(task.task_id)
        assert current is not None
        return {"task": task_dto(current)}

    async def delete(self, call: Call) -> None:
        task = await self._own(call)
        if task.status in ACTIVE:
            await self._cancel(task, "Task canceled before deletion")
        await self.repository.delete(task.task_id)

    async def events(self, call: Call) -> dict[str, Any]:
        query: PageQuery = call.query
        task = await self._own(call)
        rows = await self.repository.events(task.task_id, query.limit, seq_cursor(query.cursor))
        shown = rows[: query.limit]
        last = str(shown[-1].seq) if shown else ""
        return page("events", [event_dto(e) for e in shown], query.limit, len(rows) > query.limit, last)

    async def results(self, call: Call) -> dict[str, Any]:
        query: PageQuery = call.query
        task = await self._own(call)
        rows = await self.repository.results(task.task_id, query.limit, seq_cursor(query.cursor))
        shown = rows[: query.limit]
        last = str(shown[-1].seq) if shown else ""
        return page("results", [result_dto(r) for r in shown], query.limit, len(rows) > query.limit, last)

    async def update_secrets(self, call: Call) -> None:
        request: UpdateTaskSecretsRequest = call.body
        task = await self._own(call)
        box = call.runtime.secretbox
        sealed = [(s.name, box.seal(secret_text(s), secret_context(task.task_id, s.name))) for s in request.secrets]
        await self.repository.merge_secrets(task.task_id, sealed)
