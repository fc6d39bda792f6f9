"""RFC 9457 problem details: the one exception root of the HTTP boundary and its rendering.

Every error the gateway answers is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance``. Types follow NVCF's control plane
(``urn:nv-boot:problem-details:<kebab-name>``) so clients that match on them keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import orjson

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:nv-boot:problem-details:"


class GatewayError(Exception):
    """Root of every error that becomes an HTTP problem response."""

    status: int = 500
    name: str = "internal-server-error"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(GatewayError):
    status, name = 400, "bad-request"


class Unauthorized(GatewayError):
    status, name = 401, "unauthorized"

    def __init__(self, detail: str = "Unauthorized access", *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class Forbidden(GatewayError):
    status, name = 403, "forbidden"


class NotFound(GatewayError):
    status, name = 404, "not-found"


class MethodNotAllowed(GatewayError):
    status, name = 405, "method-not-allowed"


class Conflict(GatewayError):
    status, name = 409, "conflict"


class PayloadTooLarge(GatewayError):
    status, name = 413, "payload-too-large"


class UnsupportedMediaType(GatewayError):
    status, name = 415, "unsupported-media-type"


class TooManyRequests(GatewayError):
    status, name = 429, "too-many-requests"


class ServiceUnavailable(GatewayError):
    status, name = 503, "service-unavailable"


def problem_body(status: int, detail: str, instance: str, name: str | None = None) -> bytes:
    phrase = HTTPStatus(status).phrase
    kind = name or phrase.lower().replace(" ", "-").replace("'", "")
    return orjson.dumps(
        {
            "type": TYPE_PREFIX + kind,
            "title": phrase,
            "status": status,
            "detail": detail,
            "instance": instance,
        }
    )


def problem_headers(body: bytes, extra: Mapping[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    for key, value in (extra or {}).items():
        headers.append((key.lower().encode("latin-1"), value.encode("latin-1")))
    return headers


def error_body(exc: GatewayError, instance: str) -> bytes:
    return problem_body(exc.status, exc.detail, instance, exc.name)
