"""The tasks host's Starlette app: the ``/v1/nvct`` endpoint table and its own ``/v3/openapi``.

Scopes are reference §10's; each is accepted as a JWT scope or as ``apikey:<scope>`` of a key's
``nv-cloud-tasks`` policy (``access.TaskCredentials``). Every endpoint also has a cross-account
admin mirror under ``/v1/nvct/accounts/{ncaId}`` that needs the JWT-only ``admin:<scope>``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import Call, Endpoint, build_routes
from gateway.api.openapi import openapi_document
from gateway.http import JSONResponse
from gateway.runtime import Runtime
from gateway.services.common import build_service_app
from gateway.services.functions.ngc import org_aliases
from gateway.services.tasks.access import TaskCredentials
from gateway.services.tasks.models import (
    BulkTasksRequest,
    CreateTaskRequest,
    GetTaskQuery,
    ListTasksQuery,
    PageQuery,
    UpdateTaskSecretsRequest,
)
from gateway.services.tasks.service import TaskService

API_TITLE = "cfgate NVCT tasks"
API_VERSION = "1.0.0"
PREFIX = "/v1/nvct"
TASKS = PREFIX + "/tasks"
ADMIN_PREFIX = PREFIX + "/accounts/{ncaId}"


def _admin_mirror(endpoint: Endpoint) -> Endpoint:
    handler = endpoint.handler

    async def mirrored(call: Call) -> Any:
        return await handler(call)

    mirrored.__name__ = f"admin_{handler.__name__}"
    return dataclasses.replace(
        endpoint,
        path=ADMIN_PREFIX + endpoint.path.removeprefix(PREFIX),
        handler=mirrored,
        summary=f"{endpoint.summary} (any account)",
        scopes=tuple(f"admin:{s}" for s in endpoint.scopes),
        jwt_only=True,
        tag="tasks-admin",
    )


def task_endpoints(service: TaskService) -> list[Endpoint]:
    own = _own_endpoints(service)

    async def gpu_usage(call: Call) -> Any:
        return await service.gpu_usage(call)

    usage = Endpoint("GET", ADMIN_PREFIX + "/usage/gpus", gpu_usage, "GPUs an account's live tasks hold or wait for",
                     ("admin:list_tasks",), jwt_only=True, tag="tasks-admin")  # fmt: skip
    return [*own, *(_admin_mirror(e) for e in own), usage]


def org_task_routes(runtime: Runtime, service: TaskService) -> list[Route]:
    """NGC's ``/v2/orgs/{org}/nvct/tasks…`` for the api host (ngcsdk's task calls), org = account."""
    return build_routes(org_aliases(_own_endpoints(service), teams=False), runtime, TaskCredentials())


def _own_endpoints(service: TaskService) -> list[Endpoint]:
    async def create_task(call: Call) -> Any:
        return await service.create(call)

    async def list_tasks(call: Call) -> Any:
        return await service.list(call)

    async def bulk_tasks(call: Call) -> Any:
        return await service.bulk(call)

    async def get_task(call: Call) -> Any:
        return await service.get(call)

    async def cancel_task(call: Call) -> Any:
        return await service.cancel(call)

    async def delete_task(call: Call) -> Any:
        return await service.delete(call)

    async def list_events(call: Call) -> Any:
        return await service.events(call)

    async def list_results(call: Call) -> Any:
        return await service.results(call)

    async def update_task_secrets(call: Call) -> Any:
        return await service.update_secrets(call)

    tag = "tasks"
    return [
        Endpoint("POST", TASKS, create_task, "Create (launch) a task", ("launch_task",), body=CreateTaskRequest,
                 tag=tag),
        Endpoint("GET", TASKS, list_tasks, "List the account's tasks, newest first", ("list_tasks",),
                 query=ListTasksQuery, tag=tag),
        Endpoint("POST", TASKS + "/bulk", bulk_tasks, "Get several tasks by id", ("list_tasks",),
                 body=BulkTasksRequest, tag=tag),
        Endpoint("GET", TASKS + "/{taskId}", get_task, "Get a task", ("task_details",), query=GetTaskQuery, tag=tag),
        Endpoint("POST", TASKS + "/{taskId}/cancel", cancel_task, "Cancel a task", ("cancel_task",), tag=tag),
        Endpoint("DELETE", TASKS + "/{taskId}", delete_task, "Delete a task (terminated first if running)",
                 ("delete_task",), status=204, tag=tag),
        Endpoint("GET", TASKS + "/{taskId}/events", list_events, "List a task's events", ("list_events",),
                 query=PageQuery, tag=tag),
        Endpoint("GET", TASKS + "/{taskId}/results", list_results, "List a task's results", ("list_results",),
                 query=PageQuery, tag=tag),
        Endpoint("PUT", "/v1/nvct/secrets/tasks/{taskId}", update_task_secrets, "Set (add or overwrite) task secrets",
                 ("update_secrets",), body=UpdateTaskSecretsRequest, status=204, tag=tag),
    ]  # fmt: skip


def build_tasks_app(runtime: Runtime, service: TaskService) -> Starlette:
    endpoints = task_endpoints(service)
    document = openapi_document(endpoints, API_TITLE, API_VERSION)

    async def _openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route("/v3/openapi", _openapi, methods=["GET"]), *build_routes(endpoints, runtime, TaskCredentials())]
    return build_service_app(routes)
