"""NICo's error body ``{"source": "nico", "message": …, "data": …}``: the one exception root of
the nico host, and its rendering (the real service answers JSON, not problem+json)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

SOURCE = "nico"


class NicoError(Exception):
    """Root of every error the nico host answers; ``data`` carries field errors or a conflicting id."""

    status = 500

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class BadRequest(NicoError):
    status = 400


class Unauthorized(NicoError):
    status = 401


class Forbidden(NicoError):
    status = 403


class NotFound(NicoError):
    status = 404


class MethodNotAllowed(NicoError):
    status = 405


class Conflict(NicoError):
    status = 409


class PayloadTooLarge(NicoError):
    status = 413


class NotImplementedOperation(NicoError):
    status = 501


class Invalid(BadRequest):
    """Request data failed validation: ``data`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str], what: str = "request") -> None:
        super().__init__(f"Error validating {what} data", errors)


def error_response(exc: NicoError) -> Response:
    body = orjson.dumps({"source": SOURCE, "message": exc.message, "data": exc.data})
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return Response(body, status_code=exc.status, media_type="application/json", headers=headers)
