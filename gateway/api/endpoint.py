"""``Endpoint``: method, path, scopes, models and handler of one control-plane operation.

``build_routes`` turns a table of endpoints into Starlette routes that, in this order, check
the credential and its scopes (401/403), parse path ids (400), check an API key's function
resources against a ``{functionId}`` in the path (403, ``gateway.access``), validate query and body (400/413),
call the handler and render its result (a model or dict → 200 JSON, ``None`` → 204). The same
table feeds the OpenAPI document (``gateway.api.openapi``), so the document cannot drift.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cext.hotpath import Principal
from gateway.access import require_any_scope, require_function_resource, required_principal
from gateway.api.validation import bad_request
from gateway.http import JSONResponse, read_json
from gateway.problems import BadRequest, NotFound

if TYPE_CHECKING:
    from gateway.runtime import Runtime

Handler = Callable[["Call"], Awaitable[Any]]
# How a host turns the request's bearer into a principal (the NVCT host reads keys its own way).
Authenticate = Callable[[Request, "Runtime"], Awaitable[Principal]]

# Path parameters that NVCF types as UUIDs: anything else in this set is a 400.
UUID_PARAMS = frozenset(
    {
        "functionId",
        "functionVersionId",
        "versionId",
        "deploymentId",
        "gpuSpecId",
        "requestId",
        "assetId",
        "telemetryId",
        "registryCredentialId",
        "taskId",
    }
)
_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    # Any of these scopes (as JWT scope or apikey: authority); empty → no credential needed.
    scopes: tuple[str, ...] = ()
    jwt_only: bool = False
    body: type[BaseModel] | None = None
    optional_body: bool = False
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    tag: str = "nvcf"
    deprecated: bool = False
    extra_statuses: Mapping[int, str] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")


@dataclass(slots=True)
class Call:
    request: Request
    runtime: Runtime
    principal: Principal | None
    path: dict[str, str]
    query: Any
    body: Any

    @property
    def caller(self) -> Principal:
        assert self.principal is not None, "endpoint declared no scopes"
        return self.principal

    @property
    def nca_id(self) -> str:
        """The caller's account; a JWT whose client is not mapped to one is NVCF's 404."""
        nca_id = self.caller.nca_id
        if not nca_id:
            raise NotFound("Unknown client_id")
        return nca_id


def parse_path(params: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for name in names:
        raw = str(params[name])
        if name in UUID_PARAMS:
            try:
                parsed[name] = str(uuid.UUID(raw)) if len(raw) == 36 else _bad_uuid(name, raw)
            except ValueError:
                _bad_uuid(name, raw)
        else:
            parsed[name] = raw
    return parsed


def _bad_uuid(name: str, raw: str) -> str:
    raise BadRequest(f"Invalid {name} '{raw[:64]}': must be a UUID")


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise bad_request(exc) from None


def render(result: Any, status: int) -> Response:
    if result is None:
        return Response(status_code=204 if status == 200 else status)
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return JSONResponse(result, status_code=status)


def _route(endpoint: Endpoint, runtime: Runtime, authenticate: Authenticate) -> Route:
    limit = runtime.settings.max_control_body_bytes
    names = endpoint.path_params

    async def handle(request: Request) -> Response:
        principal = None
        if endpoint.scopes:
            principal = await authenticate(request, runtime)
            require_any_scope(principal, endpoint.scopes, jwt_only=endpoint.jwt_only)
        path = parse_path(request.path_params, names)
        if principal is not None and "functionId" in path:
            version_id = path.get("functionVersionId") or path.get("versionId")
            require_function_resource(principal, runtime, path["functionId"], version_id)
        query = _validate(endpoint.query, dict(request.query_params)) if endpoint.query else None
        body = None
        if endpoint.body is not None:
            raw = await read_json(request, limit, allow_empty=endpoint.optional_body)
            # A JSON ``null`` is no body only where the body is optional; elsewhere it fails validation.
            body = None if raw is None and endpoint.optional_body else _validate(endpoint.body, raw)
        call = Call(request, runtime, principal, path, query, body)
        return render(await endpoint.handler(call), endpoint.status)

    handle.__name__ = endpoint.operation_id
    return Route(endpoint.path, handle, methods=[endpoint.method])


def build_routes(
    endpoints: Sequence[Endpoint], runtime: Runtime, authenticate: Authenticate = required_principal
) -> list[Route]:
    return [_route(endpoint, runtime, authenticate) for endpoint in endpoints]
