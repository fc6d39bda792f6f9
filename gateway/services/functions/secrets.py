"""``PUT /v2/nvcf/secrets/…``: set a function version's secrets or a telemetry's secret (204).

Rules from NVCF's ``SecretManagementController``/``SecretManagementFacade``:

* Function secrets are **merged** into the version's existing ones (same name → new value); a
  missing or empty ``secrets`` list and duplicate names are 400. A version that is not the
  caller's own (shared with it or not) is 404. A version that has no secrets yet accepts new
  ones only while ``INACTIVE`` (400 otherwise); existing secrets can be updated in any status.
* Names and values follow ``CreateFunctionRequest``'s secret rules (``models.Secret``). Values are
  sealed with the secret box, context ``secret:<versionId>:<name>`` (as at function creation);
  a JSON-object value is stored as its JSON text. Only names are ever shown again.
* A telemetry's secret replaces the previous one (name and value), sealed with context
  ``telemetry:<telemetryId>:<name>``. Where NVCF writes to its secret store without checking, we
  answer 404 for a telemetry that is not in the caller's account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from gateway.api import Call, Endpoint
from gateway.problems import BadRequest, NotFound
from gateway.services.functions.models import FunctionStatus, Secret
from gateway.services.functions.sharing_models import UpdateFunctionSecretsRequest, UpdateTelemetrySecretRequest
from gateway.store.telemetries import TelemetryRepository

if TYPE_CHECKING:
    from gateway.runtime import Runtime

SCOPES = ("update_secrets",)


def secret_text(secret: Secret) -> str:
    """What is sealed: a string value as is, a JSON-object value as compact JSON."""
    return secret.value if isinstance(secret.value, str) else orjson.dumps(secret.value).decode()


def seal_telemetry_secret(runtime: Runtime, telemetry_id: str, secret: Secret) -> str:
    return runtime.secretbox.seal(secret_text(secret), f"telemetry:{telemetry_id}:{secret.name}")


async def update_function_secrets(call: Call) -> None:
    request: UpdateFunctionSecretsRequest = call.body
    function_id, version_id = call.path["functionId"], call.path["versionId"]
    target = f"Function id '{function_id}', version '{version_id}'"
    if not request.secrets:
        raise BadRequest(f"{target}: Missing secrets in the payload")
    if len({s.name for s in request.secrets}) != len(request.secrets):
        raise BadRequest(f"{target}: Duplicate secrets keys in the payload")
    functions = call.runtime.catalog.functions
    version = await functions.get(function_id, version_id)
    if version is None or version.nca_id != call.nca_id:
        raise NotFound(f"{target}: Not found in account '{call.nca_id}'")
    if version.status != FunctionStatus.INACTIVE.value and not version.secret_names:
        raise BadRequest(f"{target}: Add secrets only when the function is 'INACTIVE'")
    box = call.runtime.secretbox
    sealed = [(s.name, box.seal(secret_text(s), f"secret:{version_id}:{s.name}")) for s in request.secrets]
    await functions.replace_secrets(version_id, sealed)
    # Workers serving the version rewrite their container's secrets file.
    await call.runtime.secret_delivery.changed(version_id)


async def update_telemetry_secret(call: Call) -> None:
    request: UpdateTelemetrySecretRequest = call.body
    telemetry_id = call.path["telemetryId"]
    repository = TelemetryRepository(call.runtime.store.engine)
    if await repository.get(call.nca_id, telemetry_id) is None:
        raise NotFound(f"Telemetry '{telemetry_id}' not found in account '{call.nca_id}'")
    sealed = seal_telemetry_secret(call.runtime, telemetry_id, request.secret)
    await repository.set_secret(call.nca_id, telemetry_id, request.secret.name, sealed)


ENDPOINTS = [
    Endpoint(
        "PUT", "/v2/nvcf/secrets/functions/{functionId}/versions/{versionId}", update_function_secrets,
        "Set (add or overwrite) secrets of a function version", SCOPES, body=UpdateFunctionSecretsRequest,
        status=204, tag="secrets",
    ),
    Endpoint(
        "PUT", "/v2/nvcf/secrets/telemetries/{telemetryId}", update_telemetry_secret,
        "Replace the secret of a telemetry", SCOPES, body=UpdateTelemetrySecretRequest, status=204, tag="secrets",
    ),
]  # fmt: skip
