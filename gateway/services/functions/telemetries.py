"""``/v2/nvcf/telemetries``: an account's telemetry endpoints (logs, metrics, traces exporters).

Follows NVCF's ``TelemetryController``/``TelemetryFacade``/``TelemetryMapperService``:

* ``POST`` → ``{"telemetry": TelemetryDto}``; ``GET`` → ``{"telemetries": [...]}`` or
  ``{"telemetry": ...}``; ``DELETE`` → 204.
* ``TelemetryDto`` is ``telemetryId, name, endpoint, protocol, provider, types, createdAt``; the
  telemetry's ``name`` is its secret's name (NVCF has no separate name field; a ``name`` in the
  request body is ignored like any unknown field).
* A second telemetry whose secret name equals an existing one, ignoring case, is 400.
* An account may hold ``limits.maxTelemetriesAllowed`` telemetries (NVCF's default 25); one more
  is 400.
* Deleting a telemetry that a function version of the account names in ``telemetries`` is 400
  (NVCF's 400, "Cannot be deleted till Functions depend on it"); the detail names the versions.
* Another account's telemetry, like an unknown id, is 404. The secret value is sealed
  (context ``telemetry:<telemetryId>:<name>``) and never returned.
"""

from __future__ import annotations

import uuid

from gateway.api import Call, Endpoint
from gateway.problems import BadRequest, NotFound
from gateway.services.functions.secrets import seal_telemetry_secret
from gateway.services.functions.telemetry_models import (
    ListTelemetryResponse,
    TelemetryDto,
    TelemetryRequest,
    TelemetryResponse,
    ordered_types,
)
from gateway.store.clock import now_ms, rfc3339
from gateway.store.telemetries import Telemetry, TelemetryRepository

SCOPES = ("manage_telemetries",)
DEFAULT_MAX_TELEMETRIES = 25


def telemetry_dto(telemetry: Telemetry) -> TelemetryDto:
    spec = telemetry.spec
    return TelemetryDto(
        telemetryId=telemetry.telemetry_id,
        name=spec["name"],
        endpoint=spec["endpoint"],
        protocol=spec["protocol"],
        provider=spec["provider"],
        types=ordered_types(spec["types"]),
        createdAt=rfc3339(telemetry.created_at),
    )


def _repository(call: Call) -> TelemetryRepository:
    return TelemetryRepository(call.runtime.store.engine)


async def _max_telemetries(call: Call) -> int:
    account = await call.runtime.accounts.get(call.nca_id)
    limit = (account.limits if account else {}).get("maxTelemetriesAllowed")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else DEFAULT_MAX_TELEMETRIES


async def create_telemetry(call: Call) -> TelemetryResponse:
    request: TelemetryRequest = call.body
    repository = _repository(call)
    existing = await repository.for_account(call.nca_id)
    name = request.secret.name
    if any(str(t.spec.get("name", "")).lower() == name.lower() for t in existing):
        raise BadRequest(f"Account '{call.nca_id}': Telemetry with secret name '{name}' already exists")
    limit = await _max_telemetries(call)
    if len(existing) >= limit:
        raise BadRequest(
            f"Account '{call.nca_id}': Cannot add telemetry - maximum allowed telemetries ({limit}) exceeded. "
            f"Current count: {len(existing)}"
        )
    telemetry_id = str(uuid.uuid4())
    telemetry = Telemetry(
        telemetry_id=telemetry_id,
        nca_id=call.nca_id,
        spec={
            "name": name,
            "endpoint": request.endpoint,
            "protocol": request.protocol.value,
            "provider": request.provider.value,
            "types": [t.value for t in request.types],
        },
        secret_name=name,
        ciphertext=seal_telemetry_secret(call.runtime, telemetry_id, request.secret),
        created_at=now_ms(),
    )
    await repository.insert(telemetry)
    return TelemetryResponse(telemetry=telemetry_dto(telemetry))


async def list_telemetries(call: Call) -> ListTelemetryResponse:
    return ListTelemetryResponse(
        telemetries=[telemetry_dto(t) for t in await _repository(call).for_account(call.nca_id)]
    )


async def _owned(call: Call) -> Telemetry:
    telemetry_id = call.path["telemetryId"]
    telemetry = await _repository(call).get(call.nca_id, telemetry_id)
    if telemetry is None:
        raise NotFound(f"Telemetry '{telemetry_id}' not found in account '{call.nca_id}'")
    return telemetry


async def get_telemetry(call: Call) -> TelemetryResponse:
    return TelemetryResponse(telemetry=telemetry_dto(await _owned(call)))


async def delete_telemetry(call: Call) -> None:
    telemetry = await _owned(call)
    repository = _repository(call)
    users = await repository.users(call.nca_id, telemetry.telemetry_id)
    if users:
        named = ", ".join(f"function id '{u.function_id}' version '{u.version_id}'" for u in users[:10])
        raise BadRequest(f"Telemetry '{telemetry.telemetry_id}' cannot be deleted: it is used by {named}")
    await repository.delete(call.nca_id, telemetry.telemetry_id)


ENDPOINTS = [
    Endpoint(
        "POST", "/v2/nvcf/telemetries", create_telemetry, "Create a telemetry endpoint", SCOPES,
        body=TelemetryRequest, response=TelemetryResponse, tag="telemetries",
    ),
    Endpoint(
        "GET", "/v2/nvcf/telemetries", list_telemetries, "List the account's telemetries", SCOPES,
        response=ListTelemetryResponse, tag="telemetries",
    ),
    Endpoint(
        "GET", "/v2/nvcf/telemetries/{telemetryId}", get_telemetry, "Get a telemetry", SCOPES,
        response=TelemetryResponse, tag="telemetries",
    ),
    Endpoint(
        "DELETE", "/v2/nvcf/telemetries/{telemetryId}", delete_telemetry,
        "Delete a telemetry (400 while a function version uses it)", SCOPES, status=204, tag="telemetries",
    ),
]  # fmt: skip
