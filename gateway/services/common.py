"""What every embedded service app shares: problem+json for every error, JSON responses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.http import problem_response
from gateway.problems import GatewayError, MethodNotAllowed, NotFound
from gateway.tracebacks import log_failure

log = logging.getLogger("gateway.services")


ProblemRenderer = Callable[[GatewayError, str], Response]


def _handlers(render: ProblemRenderer) -> dict[type[Exception], Callable[[Request, Exception], Any]]:
    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return render(exc, request.url.path)

    async def http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return render(_from_http_exception(request, exc), request.url.path)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # Log the type and place only: request bodies and headers may hold secrets. The traceback
        # at most once per cause and minute: a bug input can trigger must not flood the log.
        log_failure(log, f"unhandled error on {request.method} {request.url.path[:200]}", exc)
        return render(GatewayError("Internal server error"), request.url.path)

    return {GatewayError: gateway_error, HTTPException: http_exception, Exception: unexpected}


def _from_http_exception(request: Request, exc: HTTPException) -> GatewayError:
    error: GatewayError
    if exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not supported for {request.url.path}")
        error.headers.update(exc.headers or {})
    elif exc.status_code == 404:
        error = NotFound(f"No endpoint {request.method} {request.url.path}")
    else:
        error = GatewayError(str(exc.detail))
        error.status = exc.status_code
    return error


def build_service_app(routes: Sequence[BaseRoute], render: ProblemRenderer = problem_response) -> Starlette:
    """``render`` turns every error into the response (problem+json by default)."""
    return Starlette(routes=list(routes), exception_handlers=_handlers(render))
