"""The api host's Starlette app: every endpoint table of the control plane, and ``/v3/openapi``."""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import Endpoint, build_routes
from gateway.api.mirrors import account_mirror
from gateway.api.openapi import openapi_document
from gateway.http import JSONResponse
from gateway.runtime import Runtime
from gateway.services.common import build_service_app
from gateway.services.functions import (
    accounts,
    assets,
    authorizations,
    cluster_groups,
    deployments,
    functions,
    ngc,
    queues,
    registries,
    secrets,
    telemetries,
)
from gateway.services.tasks.app import org_task_routes
from gateway.services.tasks.service import TaskService

API_TITLE = "cfgate NVCF control plane"
API_VERSION = "2.0.0"


def control_plane_endpoints() -> list[Endpoint]:
    return [
        *functions.ENDPOINTS,
        *deployments.ENDPOINTS,
        *queues.ENDPOINTS,
        *authorizations.ENDPOINTS,
        *secrets.ENDPOINTS,
        *telemetries.ENDPOINTS,
        *registries.ENDPOINTS,
        *cluster_groups.ENDPOINTS,
        *accounts.ENDPOINTS,
        *assets.ENDPOINTS,
    ]


def operator_endpoints() -> list[Endpoint]:
    """Cross-account mirrors (JWT ``admin:<scope>``) of nvcf-cli's ``admin secrets …`` and
    ``admin queues …``: ``/v2/nvcf/accounts/{ncaId}/secrets|queues/…``. Kept apart from the
    account-scoped table the authorization matrix walks (tests/control/test_operator_mirrors.py)."""
    return [account_mirror(e, "/v2/nvcf", tag="admin") for e in (*secrets.ENDPOINTS, *queues.ENDPOINTS)]


@cache
def openapi() -> dict[str, Any]:
    return openapi_document([*control_plane_endpoints(), *operator_endpoints()], API_TITLE, API_VERSION)


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi())


def ngc_endpoints() -> list[Endpoint]:
    """What NGC-style clients (ngcsdk) call besides ``/v2/nvcf``: ``GET /v2/orgs`` and every
    control-plane endpoint under ``/v2/orgs/{org}[/teams/{team}]`` (``services/functions/ngc.py``)."""
    return [*ngc.ENDPOINTS, *ngc.org_aliases(control_plane_endpoints())]


def build_api_app(runtime: Runtime, tasks: TaskService | None = None) -> Starlette:
    routes = [
        Route("/v3/openapi", _openapi, methods=["GET"]),
        *build_routes([*control_plane_endpoints(), *operator_endpoints(), *ngc_endpoints()], runtime),
        # Pre-signed asset upload/download URLs: outside the endpoint table (no bearer).
        *assets.extra_routes(runtime),
        *ngc.extra_routes(runtime),
        # NGC's NVCT paths answer on the api host too (ngcsdk has one base URL).
        *(org_task_routes(runtime, tasks) if tasks is not None else ()),
    ]
    return build_service_app(routes)
