"""TaskDto, event and result JSON, and the opaque page cursors.

A cursor is the URL-safe base64 of the last item's sort key (``<createdAt>:<taskId>`` for tasks,
``<seq>`` for events and results). A page that has more items after it carries ``limit`` and
``cursor``; the last page carries neither (reference §10).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from gateway.problems import BadRequest
from gateway.store.clock import rfc3339
from gateway.store.tasks import Task, TaskEvent, TaskResult

# Spec fields copied into TaskDto as accepted.
SPEC_FIELDS = (
    "gpuSpecification",
    "containerImage",
    "helmChart",
    "containerArgs",
    "containerEnvironment",
    "models",
    "resources",
    "tags",
    "description",
    "maxRuntimeDuration",
    "maxQueuedDuration",
    "terminationGracePeriodDuration",
    "resultHandlingStrategy",
    "resultsLocation",
    "telemetries",
)


def task_dto(task: Task, secret_names: list[str] | None = None) -> dict[str, Any]:
    dto: dict[str, Any] = {"id": task.task_id, "ncaId": task.nca_id, "name": task.name, "status": task.status}
    for name in SPEC_FIELDS:
        if task.spec.get(name) is not None:
            dto[name] = task.spec[name]
    if secret_names is not None:
        dto["secrets"] = secret_names
    dto["percentComplete"] = task.percent_complete or 0
    if task.last_heartbeat_at:
        dto["lastHeartbeatAt"] = rfc3339(task.last_heartbeat_at)
    dto["lastUpdatedAt"] = rfc3339(task.updated_at)
    dto["createdAt"] = rfc3339(task.created_at)
    dto["instances"] = [_instance(task)] if task.instance else []
    dto["healthInfo"] = _health(task)
    return dto


def _instance(task: Task) -> dict[str, Any]:
    assert task.instance is not None
    instance = {k: v for k, v in task.instance.items() if v}
    if task.launched_at:
        instance["launchedAt"] = rfc3339(task.launched_at)
    return instance


def _health(task: Task) -> dict[str, Any]:
    info: dict[str, Any] = {"status": task.status}
    if task.last_progress_at:
        info["lastProgressAt"] = rfc3339(task.last_progress_at)
    return info


def event_dto(event: TaskEvent) -> dict[str, Any]:
    return {
        "eventId": event.event_id,
        "taskId": event.task_id,
        "ncaId": event.nca_id,
        "message": event.message,
        "createdAt": rfc3339(event.created_at),
    }


def result_dto(result: TaskResult) -> dict[str, Any]:
    return {
        "resultId": result.result_id,
        "taskId": result.task_id,
        "ncaId": result.nca_id,
        "name": result.name,
        "metadata": result.metadata,
        "createdAt": rfc3339(result.created_at),
    }


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(f"Invalid cursor '{cursor[:64]}'") from None


def task_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    created, sep, task_id = _decode(cursor).partition(":")
    if not sep or not (created.isascii() and created.isdigit()) or len(task_id) != 36:
        raise BadRequest(f"Invalid cursor '{cursor[:64]}'")
    return int(created), task_id


def seq_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    text = _decode(cursor)
    if not (text.isascii() and text.isdigit()):
        raise BadRequest(f"Invalid cursor '{cursor[:64]}'")
    return int(text)


def page(key: str, items: list[dict[str, Any]], limit: int, more: bool, last_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {key: items}
    if more:
        body["limit"] = limit
        body["cursor"] = encode_cursor(last_key)
    return body
