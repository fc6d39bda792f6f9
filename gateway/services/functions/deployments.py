"""``/v2/nvcf/deployments…``: deploy a function version on GPUs, read, update and remove it.

Rules follow NVCF's ``FunctionDeploymentService`` and ``DeploymentValidationService``
(reference §4.2, §4.5, §17). Choices where the contract is silent or where we simplify:

* **Deploying an already-deployed version** is a 400 (NVCF: "Status <S>, use PATCH endpoint to
  update gpu-specification"); the unique ``version_id`` column makes a concurrent double deploy
  end the same way.
* **Who**: writes (POST, PUT, DELETE) need the owning account — another account that can see the
  function (shared, public) gets 403, one that cannot gets 404 (``Catalog.owned_version``). Reads
  (both GETs) and PATCH look the deployment up in the caller's account, as NVCF does, so any other
  account gets 404: a deployment is never shown outside its account.
* **Not deployed**: GET and DELETE of a version without a deployment are 404; the deprecated PUT
  checks the status first, as NVCF does, so it is a 400 "Invalid status 'INACTIVE'".
* **Status**: after every write ``Catalog.refresh_status`` recomputes it (``status.py``): a new
  deployment is DEPLOYING, or ACTIVE at once with ``minInstances: 0`` everywhere (NVCF's
  scale-to-zero rule) or enough live instances. DELETE moves the version to INACTIVE through
  ``Catalog.undeploy``, whose ``undeploy_hooks`` get ``graceful`` (default false) so the invocation
  layer can drain or drop the version's queue.
* **Invocation view**: ``routes.refresh`` runs after every write (refresh_status does it when the
  status changes; otherwise we do, since ``maxRequestConcurrency`` may have changed).
* **GPU names** are checked by ``runtime.gpu_validator`` before anything is written: the SIS
  placement rule's ``ClusterGpuValidator`` (any name while no cluster is usable by the account;
  otherwise a usable cluster must run the specification, else 400; ``clusters.placement``).
* **Container functions** may not carry ``configuration`` or ``helmValidationPolicy`` (Helm only),
  and ``backend`` and ``clusters`` cannot both be given (NVCF's messages).
* **PUT** (deprecated) must list exactly as many specifications as the deployment has; with more
  than one, each needs its ``gpuSpecificationId``. It may change ``minInstances``,
  ``maxInstances`` and ``maxRequestConcurrency`` only: another ``gpu``, ``instanceType``,
  ``backend`` or ``clusters`` is a 400.
* **PATCH** with ``autoscalingConfigurationPolicy: PLATFORM_CONFIGURATION`` removes the custom
  ``autoscalingConfiguration`` (a configuration sent with it is ignored, as in NVCF).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from gateway.access import key_may_use, require_function_resource
from gateway.api import Call, Endpoint
from gateway.problems import BadRequest, NotFound
from gateway.services.functions.deployment_models import (
    AutoscalingConfigurationPolicy,
    DeleteDeploymentQuery,
    DeploymentHealth,
    DeploymentList,
    DeploymentResponse,
    FunctionDeploymentDto,
    FunctionDeploymentRequest,
    GpuSpecification,
    GpuSpecificationDto,
    GpuSpecificationResponse,
    UpdateFunctionDeploymentRequest,
    UpdateGpuSpecification,
    UpdateGpuSpecificationRequest,
)
from gateway.services.functions.dto import function_dto
from gateway.services.functions.models import FunctionResponse, FunctionStatus
from gateway.store.clock import now_ms, rfc3339
from gateway.store.deployments import Deployment
from gateway.store.functions import FunctionVersion

SCOPES = ("deploy_function",)
# Statuses that have a deployment (NVCF's BUSY_STATUSES).
DEPLOYED_STATUSES = frozenset(
    {FunctionStatus.ACTIVE, FunctionStatus.DEPLOYING, FunctionStatus.DEGRADING, FunctionStatus.DEGRADED}
)


def _ids(version: FunctionVersion) -> str:
    return f"Function id '{version.function_id}', version '{version.version_id}'"


def _spec_dto(spec: dict[str, Any]) -> GpuSpecificationDto:
    return GpuSpecificationDto.model_validate(spec)


def deployment_dto(version: FunctionVersion, deployment: Deployment) -> FunctionDeploymentDto:
    return FunctionDeploymentDto(
        functionId=deployment.function_id,
        functionVersionId=deployment.version_id,
        deploymentId=deployment.deployment_id,
        functionName=version.name,
        ncaId=deployment.nca_id,
        functionStatus=FunctionStatus(version.status),
        healthInfo=[DeploymentHealth.model_validate(h) for h in deployment.health_info] or None,
        deploymentSpecifications=[_spec_dto(spec) for spec in deployment.specs],
        createdAt=rfc3339(deployment.created_at),
        lastUpdatedAt=rfc3339(deployment.updated_at),
    )


def _stored(spec: GpuSpecification) -> dict[str, Any]:
    return {"gpuSpecificationId": str(uuid.uuid4()), **spec.dump()}


def _check_specs(version: FunctionVersion, specs: Sequence[GpuSpecification]) -> None:
    helm = bool(version.spec.get("helmChart"))
    for spec in specs:
        if spec.backend and spec.clusters:
            raise BadRequest(
                f"{_ids(version)}: Backend:['{spec.backend}'] and Clusters:{spec.clusters} could not be "
                "specified at the same time."
            )
        if helm:
            continue
        if spec.configuration is not None:
            raise BadRequest(
                f"{_ids(version)}: The configuration field in Gpu specification should be empty for "
                "container based functions."
            )
        if spec.helmValidationPolicy is not None:
            raise BadRequest(
                f"{_ids(version)}: The helmValidationPolicy field in Gpu specification should be empty for "
                "container based functions."
            )


async def _settle(call: Call, version: FunctionVersion) -> tuple[FunctionVersion, Deployment | None]:
    """Recompute the status after a write, make sure invocation sees the change, reload both rows."""
    catalog = call.runtime.catalog
    status = await catalog.refresh_status(version.function_id, version.version_id)
    if status == version.status:  # unchanged: refresh_status did not reload the route
        await call.runtime.routes.refresh(version.function_id)
    current = await catalog.functions.get(version.function_id, version.version_id)
    return current or version, await catalog.deployments.by_version(version.version_id)


async def _owned(call: Call) -> FunctionVersion:
    return await call.runtime.catalog.owned_version(
        call.nca_id, call.path["functionId"], call.path["functionVersionId"]
    )


def _missing(version: FunctionVersion) -> NotFound:
    return NotFound(f"{_ids(version)}: Function deployment not found")


async def _in_account(call: Call, deployment: Deployment | None, what: str) -> tuple[FunctionVersion, Deployment]:
    """The deployment and its version, if both exist and belong to the caller's account (else 404)."""
    nca_id = call.nca_id
    if deployment is None or deployment.nca_id != nca_id:
        raise NotFound(f"{what} not found in account '{nca_id}'")
    version = await call.runtime.catalog.functions.get(deployment.function_id, deployment.version_id)
    if version is None:
        raise NotFound(f"{what} not found in account '{nca_id}'")
    require_function_resource(call.caller, call.runtime, deployment.function_id, deployment.version_id)
    return version, deployment


async def create_deployment(call: Call) -> DeploymentResponse:
    request: FunctionDeploymentRequest = call.body
    catalog = call.runtime.catalog
    version = await _owned(call)
    if await catalog.deployments.by_version(version.version_id) is not None:
        raise BadRequest(f"{_ids(version)}: Status {version.status}, use PATCH endpoint to update gpu-specification")
    _check_specs(version, request.deploymentSpecifications)
    await call.runtime.gpu_validator(call.nca_id, request.deploymentSpecifications)
    now = now_ms()
    deployment = Deployment(
        deployment_id=str(uuid.uuid4()),
        function_id=version.function_id,
        version_id=version.version_id,
        nca_id=version.nca_id,
        specs=[_stored(spec) for spec in request.deploymentSpecifications],
        health_info=[],
        created_at=now,
        updated_at=now,
    )
    try:
        await catalog.deployments.insert(deployment)
    except IntegrityError:  # a concurrent deploy of the same version won the race
        raise BadRequest(f"{_ids(version)}: already deployed, use PATCH endpoint to update gpu-specification") from None
    version, stored = await _settle(call, version)
    return DeploymentResponse(deployment=deployment_dto(version, stored or deployment))


async def get_deployment(call: Call) -> DeploymentResponse:
    catalog = call.runtime.catalog
    version = await catalog.visible_version(call.nca_id, call.path["functionId"], call.path["functionVersionId"])
    deployment = await catalog.deployments.by_version(version.version_id)
    if deployment is None:
        raise _missing(version)
    version, deployment = await _in_account(call, deployment, f"{_ids(version)}: Function deployment")
    return DeploymentResponse(deployment=deployment_dto(version, deployment))


async def get_deployment_by_id(call: Call) -> DeploymentResponse:
    deployment_id = call.path["deploymentId"]
    deployment = await call.runtime.catalog.deployments.by_id(deployment_id)
    version, deployment = await _in_account(call, deployment, f"Deployment '{deployment_id}'")
    return DeploymentResponse(deployment=deployment_dto(version, deployment))


async def list_deployments(call: Call) -> DeploymentList:
    """Every deployment of the caller's account (an API key: those of the functions it may use)."""
    runtime = call.runtime
    listed = []
    for deployment in await runtime.catalog.deployments.for_account(call.nca_id):
        if not key_may_use(call.caller, runtime, deployment.function_id, deployment.version_id):
            continue
        version = await runtime.catalog.functions.get(deployment.function_id, deployment.version_id)
        if version is not None:
            listed.append(deployment_dto(version, deployment))
    return DeploymentList(deployments=listed)


def _pick(
    version: FunctionVersion, specs: list[dict[str, Any]], wanted: UpdateGpuSpecification, count: int
) -> dict[str, Any]:
    if wanted.gpuSpecificationId is None:
        if count > 1:
            raise BadRequest(
                f"{_ids(version)}: Deployment has multiple GPU specifications. To update deployment use PATCH endpoint."
            )
        return specs[0]
    for spec in specs:
        if spec["gpuSpecificationId"] == wanted.gpuSpecificationId:
            return spec
    raise BadRequest(f"{_ids(version)}: GPU / InstanceType specs must match the ones in the original deployment")


def _same_placement(version: FunctionVersion, current: dict[str, Any], wanted: UpdateGpuSpecification) -> None:
    if (wanted.gpu.casefold(), wanted.instanceType.casefold()) != (
        str(current["gpu"]).casefold(),
        str(current["instanceType"]).casefold(),
    ):
        raise BadRequest(f"{_ids(version)}: GPU / InstanceType specs must match the ones in the original deployment")
    if (wanted.backend or "").strip() != (current.get("backend") or "").strip():
        raise BadRequest(
            f"{_ids(version)}: Backend '{wanted.backend or ''}' field does not match original deployment spec: "
            f"'{current.get('backend') or ''}'."
        )
    if set(wanted.clusters or ()) != set(current.get("clusters") or ()):
        raise BadRequest(
            f"{_ids(version)}: Provided clusters: '{wanted.clusters or []}' does not match clusters from "
            f"original spec: '{current.get('clusters') or []}'"
        )


async def update_deployment(call: Call) -> DeploymentResponse:
    request: UpdateFunctionDeploymentRequest = call.body
    catalog = call.runtime.catalog
    version = await _owned(call)
    if version.status not in DEPLOYED_STATUSES:
        raise BadRequest(f"{_ids(version)}: Invalid status '{version.status}'")
    deployment = await catalog.deployments.by_version(version.version_id)
    if deployment is None:
        raise _missing(version)
    wanted = request.deploymentSpecifications
    if len(wanted) != len(deployment.specs):
        raise BadRequest(f"{_ids(version)}: GPU / InstanceType specs must match the ones in the original deployment")
    specs = [dict(spec) for spec in deployment.specs]
    touched: set[str] = set()
    for item in wanted:
        current = _pick(version, specs, item, len(wanted))
        if current["gpuSpecificationId"] in touched:
            raise BadRequest(f"{_ids(version)}: GPU specification '{current['gpuSpecificationId']}' given twice")
        touched.add(current["gpuSpecificationId"])
        _same_placement(version, current, item)
        current["minInstances"] = item.minInstances
        current["maxInstances"] = item.maxInstances
        if item.maxRequestConcurrency is not None:
            current["maxRequestConcurrency"] = item.maxRequestConcurrency
    if specs != deployment.specs:
        await catalog.deployments.update_specs(deployment.deployment_id, specs)
        version, stored = await _settle(call, version)
        deployment = stored or replace(deployment, specs=specs)
    return DeploymentResponse(deployment=deployment_dto(version, deployment))


async def delete_deployment(call: Call) -> FunctionResponse:
    query: DeleteDeploymentQuery = call.query
    catalog = call.runtime.catalog
    version = await _owned(call)
    if await catalog.deployments.by_version(version.version_id) is None:
        raise _missing(version)
    await catalog.undeploy(version, graceful=query.graceful)
    version, _ = await _settle(call, version)
    return FunctionResponse(function=function_dto(version, call.nca_id))


async def update_gpu_specification(call: Call) -> GpuSpecificationResponse:
    request: UpdateGpuSpecificationRequest = call.body
    deployment_id, spec_id = call.path["deploymentId"], call.path["gpuSpecId"]
    catalog = call.runtime.catalog
    deployment = await catalog.deployments.by_id(deployment_id)
    version, deployment = await _in_account(call, deployment, f"Deployment '{deployment_id}'")
    specs = [dict(spec) for spec in deployment.specs]
    current = next((spec for spec in specs if spec["gpuSpecificationId"] == spec_id), None)
    if current is None:
        raise NotFound(f"Invalid request: Unknown gpu-specification-id '{spec_id}'")
    min_instances = request.minInstances if request.minInstances is not None else int(current["minInstances"])
    max_instances = request.maxInstances if request.maxInstances is not None else int(current["maxInstances"])
    if min_instances > max_instances:
        raise BadRequest(
            f"Invalid request: minInstances '{min_instances}' must be lesser than or equal to "
            f"maxInstances '{max_instances}'"
        )
    current["minInstances"], current["maxInstances"] = min_instances, max_instances
    if request.autoscalingConfigurationPolicy == AutoscalingConfigurationPolicy.PLATFORM_CONFIGURATION:
        current.pop("autoscalingConfiguration", None)
    elif request.autoscalingConfiguration is not None:
        current["autoscalingConfiguration"] = request.autoscalingConfiguration.dump()
    if specs != deployment.specs:
        await catalog.deployments.update_specs(deployment.deployment_id, specs)
        await _settle(call, version)
    return GpuSpecificationResponse(gpuSpecification=_spec_dto(current))


VERSION = "/v2/nvcf/deployments/functions/{functionId}/versions/{functionVersionId}"

ENDPOINTS = [
    Endpoint(
        "POST", VERSION, create_deployment, "Deploy a function version", SCOPES,
        body=FunctionDeploymentRequest, response=DeploymentResponse, tag="deployments",
    ),
    Endpoint(
        "GET", VERSION, get_deployment, "Get a function version's deployment", SCOPES,
        response=DeploymentResponse, tag="deployments",
    ),
    Endpoint(
        "PUT", VERSION, update_deployment, "Update a function version's deployment", SCOPES,
        body=UpdateFunctionDeploymentRequest, response=DeploymentResponse, tag="deployments", deprecated=True,
    ),
    Endpoint(
        "DELETE", VERSION, delete_deployment, "Undeploy a function version", SCOPES,
        query=DeleteDeploymentQuery, response=FunctionResponse, tag="deployments",
    ),
    Endpoint(
        "GET", "/v2/nvcf/deployments", list_deployments, "List the account's deployments", SCOPES,
        response=DeploymentList, tag="deployments",
    ),
    Endpoint(
        "GET", "/v2/nvcf/deployments/{deploymentId}", get_deployment_by_id, "Get a deployment", SCOPES,
        response=DeploymentResponse, tag="deployments",
    ),
    Endpoint(
        "PATCH", "/v2/nvcf/deployments/{deploymentId}/gpu-specifications/{gpuSpecId}", update_gpu_specification,
        "Update one GPU specification of a deployment", SCOPES,
        body=UpdateGpuSpecificationRequest, response=GpuSpecificationResponse, tag="deployments",
    ),
]  # fmt: skip
