"""Control-plane request bodies are JSON: any other declared ``Content-Type`` is a 415.

``application/json`` and the ``+json`` types (``application/merge-patch+json`` …) pass, with any
parameters (``charset``). A request that declares no type is read as JSON, as curl's ``--json``
predecessors and bare clients send it; one that declares another type (a form, text) is refused
before its body is read, rather than failing later as "Malformed JSON".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway import http
from gateway.problems import UnsupportedMediaType


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def require_json(request: Request) -> None:
    declared = request.headers.get("content-type")
    if declared is not None and declared.strip() and not is_json(declared):
        raise UnsupportedMediaType(f"Content-Type '{declared[:100]}' is not supported: send application/json")


async def read_json(request: Request, limit: int, *, allow_empty: bool = False) -> Any:
    require_json(request)
    return await http.read_json(request, limit, allow_empty=allow_empty)


async def read_json_object(request: Request, limit: int, *, allow_empty: bool = False) -> dict[str, Any]:
    require_json(request)
    return await http.read_json_object(request, limit, allow_empty=allow_empty)
