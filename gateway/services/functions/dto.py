"""FunctionDto rendering from stored versions, as the caller is allowed to see them."""

from __future__ import annotations

from typing import Any

from gateway.services.functions.models import FunctionDto, Instance
from gateway.store.clock import rfc3339
from gateway.store.functions import FunctionVersion
from invoker.instances import LiveInstance

# Removed from functions owned by another account (reference §4.1).
PRIVATE_FIELDS = (
    "inferenceUrl",
    "inferencePort",
    "containerArgs",
    "containerEnvironment",
    "containerImage",
    "helmChart",
    "helmChartServiceName",
    "healthUri",
    "health",
    "models",
    "resources",
    "telemetries",
)
SPEC_FIELDS = (
    "inferenceUrl",
    "inferencePort",
    "containerArgs",
    "containerEnvironment",
    "models",
    "containerImage",
    "apiBodyFormat",
    "helmChart",
    "helmChartServiceName",
    "healthUri",
    "resources",
    "tags",
    "description",
    "health",
    "functionType",
    "rateLimit",
    "llmInvocationConfig",
    "telemetries",
)


def instance_dto(instance: LiveInstance) -> Instance:
    return Instance(
        instanceId=instance.instance_id,
        functionId=instance.function_id,
        functionVersionId=instance.version_id,
        instanceType=instance.instance_type,
        instanceStatus=instance.status,
        ncaId=instance.nca_id,
        gpu=instance.gpu,
        backend=instance.backend,
        location=instance.location,
        instanceCreatedAt=rfc3339(instance.started_at),
        instanceUpdatedAt=rfc3339(instance.updated_at),
    )


def function_dto(
    version: FunctionVersion,
    caller_nca_id: str,
    *,
    details: bool = False,
    include_secrets: bool = False,
    instances: list[LiveInstance] | None = None,
) -> FunctionDto:
    owned = version.nca_id == caller_nca_id
    fields: dict[str, Any] = {name: version.spec.get(name) for name in SPEC_FIELDS}
    created = rfc3339(version.created_at)
    fields.update(
        id=version.function_id,
        ncaId=version.nca_id,
        versionId=version.version_id,
        name=version.name,
        status=version.status,
        createdAt=created,
        creationTime=created,
    )
    if owned:
        if details or include_secrets:
            fields["secrets"] = list(version.secret_names)
    else:
        fields["ownedByDifferentAccount"] = True
        for name in PRIVATE_FIELDS:
            fields.pop(name, None)
    if details and owned:
        fields["activeInstances"] = [instance_dto(i) for i in instances or []]
    return FunctionDto.model_validate(fields)
