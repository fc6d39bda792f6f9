"""The sis host's Starlette app: the cluster endpoints and their own ``/v3/openapi``.

Errors are RFC 9457 problem+json like every cfgate service, with one extension member:
``error`` repeats ``detail``, because ICMS answers ``{"error": "..."}`` and nvcf-cli reads that
field (§17). Clients of either convention find what they look for.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import build_routes
from gateway.api.openapi import openapi_document
from gateway.http import JSONResponse
from gateway.problems import TYPE_PREFIX, GatewayError, problem_headers
from gateway.runtime import Runtime
from gateway.services.clusters.clusters import ENDPOINTS
from gateway.services.common import build_service_app

API_TITLE = "cfgate SIS cluster management"
API_VERSION = "1.0.0"


def sis_problem_response(exc: GatewayError, instance: str) -> Response:
    body = orjson.dumps(
        {
            "type": TYPE_PREFIX + exc.name,
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
            "instance": instance,
            "error": exc.detail,
        }
    )
    response = Response(body, status_code=exc.status)
    response.raw_headers = problem_headers(body, exc.headers)
    return response


@cache
def openapi() -> dict[str, Any]:
    return openapi_document(ENDPOINTS, API_TITLE, API_VERSION)


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi())


def build_sis_app(runtime: Runtime) -> Starlette:
    routes = [Route("/v3/openapi", _openapi, methods=["GET"]), *build_routes(ENDPOINTS, runtime)]
    return build_service_app(routes, render=sis_problem_response)
