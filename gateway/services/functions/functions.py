"""``/v2/nvcf/functions…``: register, version, list, get, update, delete, rate limits."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from pydantic import BeforeValidator, Field

from gateway.access import key_may_use
from gateway.api import ApiModel, Call, Endpoint
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.problems import BadRequest, NotFound
from gateway.services.functions.accounts import check_function_quota
from gateway.services.functions.dto import function_dto
from gateway.services.functions.models import (
    CreateFunctionRequest,
    FunctionIdsResponse,
    FunctionListResponse,
    FunctionResponse,
    FunctionStatus,
    UpdateFunctionRequest,
)
from gateway.store.clock import now_ms
from gateway.store.functions import FunctionVersion

LIST_SCOPES = ("list_functions", "list_functions_details")
DETAILS_SCOPE = "list_functions_details"
VISIBILITIES = ("authorized", "private", "public")
DEFAULT_PORT = 8000
DEFAULT_HEALTH = {
    "protocol": "HTTP",
    "uri": "/v2/health/ready",
    "port": 8000,
    "timeout": "PT10S",
    "expectedStatusCode": 200,
}


def _visibility(value: Any) -> Any:
    if value is None or value == "":
        return list(VISIBILITIES)
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


class ListQuery(ApiModel):
    visibility: Annotated[
        list[Annotated[str, Field(pattern="^(authorized|private|public)$")]], BeforeValidator(_visibility)
    ] = Field(default_factory=lambda: list(VISIBILITIES), description="comma-separated: authorized,private,public")


class GetQuery(ApiModel):
    includeSecrets: bool = False


def _details(call: Call) -> bool:
    return not call.caller.authorities.isdisjoint((DETAILS_SCOPE, APIKEY_PREFIX + DETAILS_SCOPE))


def _spec(request: CreateFunctionRequest) -> dict[str, Any]:
    """What is stored: the request without its secrets, with NVCF's server defaults applied."""
    spec = request.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"secrets"})
    spec.setdefault("inferencePort", DEFAULT_PORT)
    if "health" not in spec:
        if "healthUri" in spec:
            spec["health"] = {**DEFAULT_HEALTH, "uri": spec["healthUri"], "port": spec["inferencePort"]}
        else:
            spec["health"] = dict(DEFAULT_HEALTH)
    return spec


def _sealed(call: Call, version_id: str, request: CreateFunctionRequest) -> list[tuple[str, str]]:
    box = call.runtime.secretbox
    sealed = []
    for secret in request.secrets or []:
        value = secret.value if isinstance(secret.value, str) else orjson.dumps(secret.value).decode()
        sealed.append((secret.name, box.seal(value, f"secret:{version_id}:{secret.name}")))
    return sealed


async def _store_version(call: Call, function_id: str, request: CreateFunctionRequest) -> FunctionResponse:
    now = now_ms()
    version_id = str(uuid.uuid4())
    version = FunctionVersion(
        version_id=version_id,
        function_id=function_id,
        nca_id=call.nca_id,
        name=request.name,
        status=FunctionStatus.INACTIVE.value,
        spec=_spec(request),
        public=False,
        created_at=now,
        updated_at=now,
        secret_names=tuple(sorted(s.name for s in request.secrets or [])),
    )
    await call.runtime.catalog.validate_references(call.nca_id, request)
    await call.runtime.catalog.functions.insert(version, _sealed(call, version_id, request))
    await call.runtime.routes.refresh(function_id)
    return FunctionResponse(function=function_dto(version, call.nca_id, details=_details(call)))


async def create_function(call: Call) -> FunctionResponse:
    await check_function_quota(call.runtime, call.nca_id)
    return await _store_version(call, str(uuid.uuid4()), call.body)


async def create_function_version(call: Call) -> FunctionResponse:
    function_id = call.path["functionId"]
    versions = await call.runtime.catalog.owned_versions(call.nca_id, function_id)
    if any(v.public for v in versions):
        raise BadRequest("New versions cannot be added to a public function")
    return await _store_version(call, function_id, call.body)


async def _list(call: Call) -> list[FunctionVersion]:
    wanted = set(call.query.visibility)
    versions = await call.runtime.catalog.functions.visible(
        call.nca_id, private="private" in wanted, authorized="authorized" in wanted, public="public" in wanted
    )
    # An API key lists only the functions its resources allow (NVCF's ``allAllowedFunctions``).
    return [v for v in versions if key_may_use(call.caller, call.runtime, v.function_id, v.version_id)]


def _dtos(call: Call, versions: list[FunctionVersion]) -> FunctionListResponse:
    details = _details(call)
    instances = call.runtime.instances
    return FunctionListResponse(
        functions=[
            function_dto(
                v, call.nca_id, details=details, instances=instances.instances(v.version_id) if details else None
            )
            for v in versions
        ]
    )


async def list_functions(call: Call) -> FunctionListResponse:
    return _dtos(call, await _list(call))


async def list_function_ids(call: Call) -> FunctionIdsResponse:
    return FunctionIdsResponse(functionIds=list(dict.fromkeys(v.function_id for v in await _list(call))))


async def list_function_versions(call: Call) -> FunctionListResponse:
    function_id = call.path["functionId"]
    versions = await call.runtime.catalog.visible_versions(call.nca_id, function_id)
    if not versions:
        raise NotFound(f"Function '{function_id}' not found")
    # A key granted some versions (``function:<fid>/<vid>``) lists only those.
    return _dtos(call, [v for v in versions if key_may_use(call.caller, call.runtime, function_id, v.version_id)])


async def get_function_version(call: Call) -> FunctionResponse:
    version = await call.runtime.catalog.visible_version(
        call.nca_id, call.path["functionId"], call.path["functionVersionId"]
    )
    details = _details(call)
    instances = call.runtime.instances.instances(version.version_id) if details else None
    dto = function_dto(
        version, call.nca_id, details=details, include_secrets=call.query.includeSecrets, instances=instances
    )
    return FunctionResponse(function=dto)


def _merge_update(spec: dict[str, Any], update: UpdateFunctionRequest) -> dict[str, Any]:
    merged = dict(spec)
    changes = update.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name in ("tags", "rateLimit", "llmInvocationConfig"):
        if name in changes:
            merged[name] = changes[name]
    if update.modelUpdates:
        models = {m.get("name"): dict(m) for m in merged.get("models") or []}
        for model_update in update.modelUpdates:
            if model_update.modelName not in models:
                raise BadRequest(f"Model '{model_update.modelName}' is not part of this function")
            current = models[model_update.modelName].get("llmConfig") or {}
            patch = model_update.llmConfig.model_dump(mode="json", exclude_none=True)
            models[model_update.modelName]["llmConfig"] = {**current, **patch}
        merged["models"] = list(models.values())
    return merged


async def _apply_update(call: Call, spec_change: dict[str, Any]) -> FunctionVersion:
    catalog = call.runtime.catalog
    version = await catalog.owned_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    await catalog.functions.update_spec(version.version_id, spec_change)
    await call.runtime.routes.refresh(version.function_id)
    updated = await catalog.functions.get(version.function_id, version.version_id)
    assert updated is not None
    return updated


async def update_function_version(call: Call) -> FunctionResponse:
    catalog = call.runtime.catalog
    current = await catalog.owned_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    updated = await _apply_update(call, _merge_update(current.spec, call.body))
    return FunctionResponse(function=function_dto(updated, call.nca_id, details=_details(call)))


async def update_function_metadata(call: Call) -> FunctionResponse:
    return await update_function_version(call)


async def delete_function_version(call: Call) -> None:
    catalog = call.runtime.catalog
    version = await catalog.owned_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    await catalog.undeploy(version, graceful=False)
    await catalog.functions.delete(version.version_id)
    await call.runtime.routes.refresh(version.function_id)


async def put_rate_limit(call: Call) -> None:
    update: UpdateFunctionRequest = call.body
    if update.rateLimit is None:
        raise BadRequest("Validation failed: [field=rateLimit, rejected=null, message=must not be null]")
    catalog = call.runtime.catalog
    current = await catalog.owned_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    await _apply_update(call, {**current.spec, "rateLimit": update.rateLimit.dump()})


async def delete_rate_limit(call: Call) -> None:
    catalog = call.runtime.catalog
    current = await catalog.owned_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    await _apply_update(call, {k: v for k, v in current.spec.items() if k != "rateLimit"})


VERSION = "/v2/nvcf/functions/{functionId}/versions/{functionVersionId}"
RATE_LIMIT = "/v2/nvcf/ratelimit/functions/{functionId}/versions/{functionVersionId}"

ENDPOINTS = [
    Endpoint(
        "POST", "/v2/nvcf/functions", create_function, "Create a function", ("register_function",),
        body=CreateFunctionRequest, response=FunctionResponse, tag="functions",
    ),
    Endpoint(
        "POST", "/v2/nvcf/functions/{functionId}/versions", create_function_version, "Create a function version",
        ("register_function",), body=CreateFunctionRequest, response=FunctionResponse, tag="functions",
    ),
    Endpoint(
        "GET", "/v2/nvcf/functions", list_functions, "List functions", LIST_SCOPES,
        query=ListQuery, response=FunctionListResponse, tag="functions",
    ),
    Endpoint(
        "GET", "/v2/nvcf/functions/ids", list_function_ids, "List function ids", LIST_SCOPES,
        query=ListQuery, response=FunctionIdsResponse, tag="functions",
    ),
    Endpoint(
        "GET", "/v2/nvcf/functions/{functionId}/versions", list_function_versions, "List versions of a function",
        LIST_SCOPES, response=FunctionListResponse, tag="functions",
    ),
    Endpoint(
        "GET", VERSION, get_function_version, "Get a function version", LIST_SCOPES,
        query=GetQuery, response=FunctionResponse, tag="functions",
    ),
    Endpoint(
        "PUT", VERSION, update_function_version, "Update a function version", ("update_function",),
        body=UpdateFunctionRequest, response=FunctionResponse, tag="functions",
    ),
    Endpoint(
        "PUT", "/v2/nvcf/metadata/functions/{functionId}/versions/{functionVersionId}", update_function_metadata,
        "Update a function version's metadata", ("update_function",), body=UpdateFunctionRequest,
        response=FunctionResponse, tag="functions", deprecated=True,
    ),
    Endpoint(
        "DELETE", VERSION, delete_function_version, "Delete a function version (undeploys it first)",
        ("delete_function",), status=204, tag="functions",
    ),
    Endpoint(
        "PUT", RATE_LIMIT, put_rate_limit, "Set a function version's rate limit", ("update_function",),
        body=UpdateFunctionRequest, status=204, tag="functions",
    ),
    Endpoint(
        "DELETE", RATE_LIMIT, delete_rate_limit, "Remove a function version's rate limit", ("update_function",),
        status=204, tag="functions",
    ),
]  # fmt: skip
