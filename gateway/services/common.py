"""What every embedded service app shares: problem+json for every error, JSON responses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.http import problem_response
from gateway.problems import GatewayError, MethodNotAllowed, NotFound

log = logging.getLogger("gateway.services")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return problem_response(exc, request.url.path)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not supported for {request.url.path}")
        error.headers.update(exc.headers or {})
    elif exc.status_code == 404:
        error = NotFound(f"No endpoint {request.method} {request.url.path}")
    else:
        error = GatewayError(str(exc.detail))
        error.status = exc.status_code
    return problem_response(error, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Log the type and place only: request bodies and headers may hold secrets.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return problem_response(GatewayError("Internal server error"), request.url.path)


def build_service_app(routes: Sequence[BaseRoute]) -> Starlette:
    return Starlette(
        routes=list(routes),
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_exception,
            Exception: _unexpected,
        },
    )
