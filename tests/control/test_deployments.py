"""``/v2/nvcf/deployments…``: contract, validation (nothing written on a 400), access and status."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.problems import BadRequest
from gateway.services.functions.deployment_models import GpuSpecification
from gateway.store.deployments import Deployment
from tests.control.conftest import OTHER_CLIENT_ID, OTHER_NCA_ID
from tests.control.helpers import create_function, deployment_body
from tests.gateway.helpers import admin_token, assert_problem, create_key, key_body

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DEPLOYMENT_FIELDS = {
    "functionId",
    "functionVersionId",
    "deploymentId",
    "functionName",
    "ncaId",
    "functionStatus",
    "deploymentSpecifications",
    "createdAt",
    "lastUpdatedAt",
}
HELM = {
    "containerImage": None,
    "helmChart": "oci://registry.example/charts/echo:1.0.0",
    "helmChartServiceName": "echo",
}


def path(fid: str, vid: str) -> str:
    return f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"


def helm_function_body() -> dict[str, Any]:
    return {k: v for k, v in HELM.items() if v is not None}


async def new_function(api: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> tuple[str, str]:
    dto = await create_function(api, headers, **overrides)
    return dto["id"], dto["versionId"]


async def new_helm_function(api: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, str]:
    response = await api.post(
        "/v2/nvcf/functions",
        json={
            "name": "helm-echo",
            "inferenceUrl": "/echo",
            "inferencePort": 8000,
            **helm_function_body(),
        },
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["function"]["id"], response.json()["function"]["versionId"]


async def deploy(
    api: httpx.AsyncClient, headers: dict[str, str], fid: str, vid: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await api.post(path(fid, vid), json=body or deployment_body(), headers=headers)
    assert response.status_code == 200, response.text
    deployment: dict[str, Any] = response.json()["deployment"]
    return deployment


async def row(gateway: Gateway, vid: str) -> Deployment | None:
    return await gateway.runtime.catalog.deployments.by_version(vid)


async def status(gateway: Gateway, fid: str, vid: str) -> str:
    version = await gateway.runtime.catalog.functions.get(fid, vid)
    assert version is not None
    return version.status


async def share(gateway: Gateway, fid: str) -> None:
    await gateway.runtime.catalog.authorizations.add(fid, "", OTHER_NCA_ID, OTHER_CLIENT_ID)
    await gateway.runtime.routes.refresh(fid)


def assert_json(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


# --- create ----------------------------------------------------------------------------------------


async def test_create_deployment_contract(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    response = await api.post(path(fid, vid), json=deployment_body(), headers=admin)
    body = assert_json(response)
    assert set(body) == {"deployment"}
    deployment = body["deployment"]
    assert set(deployment) == DEPLOYMENT_FIELDS
    assert deployment["functionId"] == fid
    assert deployment["functionVersionId"] == vid
    uuid.UUID(deployment["deploymentId"])
    assert deployment["functionName"] == "echo"
    assert deployment["ncaId"] == gateway.settings.default_nca_id
    assert deployment["functionStatus"] == "DEPLOYING"
    assert RFC3339.match(deployment["createdAt"]) and RFC3339.match(deployment["lastUpdatedAt"])
    [spec] = deployment["deploymentSpecifications"]
    uuid.UUID(spec.pop("gpuSpecificationId"))
    assert spec == {
        "gpu": "H100",
        "instanceType": "NCP.GPU.H100_1x",
        "minInstances": 1,
        "maxInstances": 1,
        "maxRequestConcurrency": 10,
    }
    stored = await row(gateway, vid)
    assert stored is not None and stored.deployment_id == deployment["deploymentId"]
    # The function and the invocation view moved to DEPLOYING, with the deployment's concurrency.
    function = assert_json(await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=admin))["function"]
    assert function["status"] == "DEPLOYING"
    route = gateway.runtime.routes.get(fid)
    assert route is not None
    assert route.versions[vid].status == "DEPLOYING"
    assert route.versions[vid].max_request_concurrency == 10


async def test_defaults_and_optional_fields_round_trip(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    spec = {
        "gpu": "L40S",
        "instanceType": "NCP.GPU.L40S_2x",
        "minInstances": 1,
        "maxInstances": 3,
        "availabilityZones": ["az-1", "az-2", "az-1"],
        "regions": ["us-west-1"],
        "attributes": ["fast-net"],
        "preferredOrder": 2,
        "cpuArch": "x86_64",
        "os": "linux",
        "driverVersion": "550.54",
        "storage": "80G",
        "systemMemory": "256G",
        "gpuMemory": "48G",
        "autoscalingConfiguration": {
            "scaleUpDetails": {"metric": "queue", "factor": 2.0, "threshold": 80},
            "scaleDownDetails": {
                "factor": 0.5,
                "threshold": 10,
                "stickiness": {"size": "PT30M", "threshold": "PT5M"},
            },
        },
        "gpuSpecificationId": str(uuid.uuid4()),  # server-assigned: a client value is ignored
        "somethingUnknown": True,
    }
    deployment = await deploy(api, admin, fid, vid, {"deploymentSpecifications": [spec]})
    [got] = deployment["deploymentSpecifications"]
    assert got["gpuSpecificationId"] != spec["gpuSpecificationId"]
    assert got["maxRequestConcurrency"] == 1  # default
    assert got["availabilityZones"] == ["az-1", "az-2"]  # a set
    assert "somethingUnknown" not in got
    for name in ("regions", "attributes", "preferredOrder", "cpuArch", "os", "driverVersion", "storage"):
        assert got[name] == spec[name]
    assert got["systemMemory"] == "256G" and got["gpuMemory"] == "48G"
    assert got["autoscalingConfiguration"] == spec["autoscalingConfiguration"]


async def test_several_specifications_each_get_an_id(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    body = deployment_body()
    body["deploymentSpecifications"].append(
        {"gpu": "A100", "instanceType": "NCP.GPU.A100_1x", "minInstances": 0, "maxInstances": 2}
    )
    deployment = await deploy(api, admin, fid, vid, body)
    ids = [s["gpuSpecificationId"] for s in deployment["deploymentSpecifications"]]
    assert len(set(ids)) == 2
    assert [s["gpu"] for s in deployment["deploymentSpecifications"]] == ["H100", "A100"]


async def test_scale_to_zero_is_active_at_once(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    deployment = await deploy(api, admin, fid, vid, deployment_body(minInstances=0, maxInstances=2))
    assert deployment["functionStatus"] == "ACTIVE"
    assert await status(gateway, fid, vid) == "ACTIVE"
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.versions[vid].invocable


async def test_helm_function_accepts_configuration_and_validation_policy(
    api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    fid, vid = await new_helm_function(api, admin)
    policy = {"name": "Default", "extraKubernetesTypes": [{"group": "batch", "version": "v1", "kind": "CronJob"}]}
    body = deployment_body(configuration={"replicas": 2, "image": {"tag": "1.0"}}, helmValidationPolicy=policy)
    [spec] = (await deploy(api, admin, fid, vid, body))["deploymentSpecifications"]
    assert spec["configuration"] == {"replicas": 2, "image": {"tag": "1.0"}}
    assert spec["helmValidationPolicy"] == policy


@pytest.mark.parametrize("name", ["UNRESTRICTED", "Unrestricted", "DEFAULT"])
async def test_helm_validation_policy_names(api: httpx.AsyncClient, admin: dict[str, str], name: str) -> None:
    fid, vid = await new_helm_function(api, admin)
    [spec] = (await deploy(api, admin, fid, vid, deployment_body(helmValidationPolicy={"name": name})))[
        "deploymentSpecifications"
    ]
    assert spec["helmValidationPolicy"] == {"name": name}


async def test_helm_validation_policy_unknown_name_is_400(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_helm_function(api, admin)
    response = await api.post(
        path(fid, vid), json=deployment_body(helmValidationPolicy={"name": "STRICT"}), headers=admin
    )
    problem = assert_problem(response, 400, "bad-request")
    assert "helmValidationPolicy.name" in problem["detail"]
    assert await row(gateway, vid) is None


def _spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = deployment_body(**overrides)["deploymentSpecifications"][0]
    return spec


def _without(name: str) -> dict[str, Any]:
    spec = _spec()
    del spec[name]
    return {"deploymentSpecifications": [spec]}


def scaling(**details: Any) -> dict[str, Any]:
    return deployment_body(autoscalingConfiguration=details)


INVALID_BODIES: list[tuple[str, Any]] = [
    ("empty object", {}),
    ("null specifications", {"deploymentSpecifications": None}),
    ("no specifications", {"deploymentSpecifications": []}),
    ("specifications not a list", {"deploymentSpecifications": _spec()}),
    ("body is a list", [_spec()]),
    ("gpu missing", _without("gpu")),
    ("gpu empty", deployment_body(gpu="")),
    ("gpu blank", deployment_body(gpu="   ")),
    ("instanceType missing", _without("instanceType")),
    ("instanceType blank", deployment_body(instanceType=" ")),
    ("minInstances missing", _without("minInstances")),
    ("maxInstances missing", _without("maxInstances")),
    ("minInstances negative", deployment_body(minInstances=-1)),
    ("maxInstances zero", deployment_body(minInstances=0, maxInstances=0)),
    ("min above max", deployment_body(minInstances=3, maxInstances=2)),
    ("concurrency zero", deployment_body(maxRequestConcurrency=0)),
    ("concurrency too high", deployment_body(maxRequestConcurrency=16385)),
    ("concurrency not a number", deployment_body(maxRequestConcurrency="many")),
    ("preferredOrder zero", deployment_body(preferredOrder=0)),
    ("preferredOrder 100", deployment_body(preferredOrder=100)),
    ("zones not a list", deployment_body(availabilityZones="az-1")),
    ("empty zone name", deployment_body(clusters=[""])),
    ("configuration not an object", deployment_body(configuration="replicas=2")),
    ("configuration on a container function", deployment_body(configuration={"replicas": 2})),
    ("validation policy on a container function", deployment_body(helmValidationPolicy={"name": "DEFAULT"})),
    ("backend and clusters", deployment_body(backend="GFN", clusters=["c1"])),
    (
        "duplicate gpu and instance type",
        {"deploymentSpecifications": [_spec(), _spec(gpu="h100", minInstances=0)]},
    ),
    ("scale up factor below 1", scaling(scaleUpDetails={"factor": 0.5, "threshold": 50})),
    ("scale down factor above 1", scaling(scaleDownDetails={"factor": 1.5, "threshold": 50})),
    ("threshold above 100", scaling(scaleUpDetails={"factor": 2, "threshold": 101})),
    ("factor missing", scaling(scaleUpDetails={"threshold": 10})),
    (
        "stickiness over an hour",
        deployment_body(
            autoscalingConfiguration={
                "scaleUpDetails": {"factor": 2, "threshold": 50, "stickiness": {"size": "PT2H", "threshold": "PT5M"}}
            }
        ),
    ),
    (
        "stickiness threshold not below size",
        deployment_body(
            autoscalingConfiguration={
                "scaleUpDetails": {"factor": 2, "threshold": 50, "stickiness": {"size": "PT5M", "threshold": "PT5M"}}
            }
        ),
    ),
    (
        "stickiness not a duration",
        deployment_body(
            autoscalingConfiguration={
                "scaleUpDetails": {"factor": 2, "threshold": 50, "stickiness": {"size": "30m", "threshold": "PT5M"}}
            }
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body"), INVALID_BODIES, ids=[case for case, _ in INVALID_BODIES])
async def test_invalid_deployment_is_400_and_writes_nothing(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, case: str, body: Any
) -> None:
    fid, vid = await new_function(api, admin)
    problem = assert_problem(await api.post(path(fid, vid), json=body, headers=admin), 400, "bad-request")
    assert problem["instance"] == path(fid, vid)
    assert await row(gateway, vid) is None
    assert await status(gateway, fid, vid) == "INACTIVE"
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.versions[vid].status == "INACTIVE"


async def test_min_above_max_detail(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    response = await api.post(path(fid, vid), json=deployment_body(minInstances=3, maxInstances=2), headers=admin)
    problem = assert_problem(response, 400)
    assert "minInstances '3' must be lesser than or equal to maxInstances '2'" in problem["detail"]


async def test_not_json_is_400(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    headers = {**admin, "Content-Type": "application/json"}
    assert_problem(await api.post(path(fid, vid), content=b"{not json", headers=headers), 400)
    assert_problem(await api.post(path(fid, vid), headers=admin), 400)
    assert await row(gateway, vid) is None


async def test_deploying_twice_is_400_and_keeps_the_first(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    response = await api.post(path(fid, vid), json=deployment_body(gpu="A100"), headers=admin)
    problem = assert_problem(response, 400, "bad-request")
    assert problem["detail"] == (
        f"Function id '{fid}', version '{vid}': Status DEPLOYING, use PATCH endpoint to update gpu-specification"
    )
    assert await row(gateway, vid) == before


async def test_gpu_validator_seam_rejects_before_writing(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    seen: list[tuple[str, list[str]]] = []

    async def only_h100(nca_id: str, specs: Sequence[GpuSpecification]) -> None:
        seen.append((nca_id, [s.gpu for s in specs]))
        for spec in specs:
            if spec.gpu != "H100":
                raise BadRequest(f"Invalid GPU '{spec.gpu}' specified")

    gateway.runtime.gpu_validator = only_h100
    fid, vid = await new_function(api, admin)
    problem = assert_problem(await api.post(path(fid, vid), json=deployment_body(gpu="B200"), headers=admin), 400)
    assert problem["detail"] == "Invalid GPU 'B200' specified"
    assert await row(gateway, vid) is None
    await deploy(api, admin, fid, vid)
    assert seen == [(gateway.settings.default_nca_id, ["B200"]), (gateway.settings.default_nca_id, ["H100"])]


# --- read ------------------------------------------------------------------------------------------


async def test_get_by_version_and_by_id(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    by_version = assert_json(await api.get(path(fid, vid), headers=admin))
    assert by_version == {"deployment": created}
    by_id = assert_json(await api.get(f"/v2/nvcf/deployments/{created['deploymentId']}", headers=admin))
    assert by_id == {"deployment": created}


async def test_get_undeployed_and_unknown_are_404(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    assert_problem(await api.get(path(fid, vid), headers=admin), 404, "not-found")
    assert_problem(await api.get(path(fid, str(uuid.uuid4())), headers=admin), 404)
    assert_problem(await api.get(path(str(uuid.uuid4()), vid), headers=admin), 404)
    assert_problem(await api.get(f"/v2/nvcf/deployments/{uuid.uuid4()}", headers=admin), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v2/nvcf/deployments/functions/not-a-uuid/versions/{vid}"),
        ("POST", "/v2/nvcf/deployments/functions/{fid}/versions/123"),
        ("PUT", "/v2/nvcf/deployments/functions/{fid}/versions/zz"),
        ("DELETE", "/v2/nvcf/deployments/functions/{fid}/versions/{fid}x"),
        ("GET", "/v2/nvcf/deployments/nope"),
        ("PATCH", "/v2/nvcf/deployments/nope/gpu-specifications/{vid}"),
        ("PATCH", "/v2/nvcf/deployments/{vid}/gpu-specifications/nope"),
    ],
)
async def test_bad_uuids_are_400(api: httpx.AsyncClient, admin: dict[str, str], method: str, url: str) -> None:
    fid, vid = str(uuid.uuid4()), str(uuid.uuid4())
    response = await api.request(
        method, url.format(fid=fid, vid=vid), json={"minInstances": 1, **deployment_body()}, headers=admin
    )
    problem = assert_problem(response, 400, "bad-request")
    assert "must be a UUID" in problem["detail"]


ENDPOINTS = [
    ("POST", "version"),
    ("GET", "version"),
    ("PUT", "version"),
    ("DELETE", "version"),
    ("GET", "id"),
    ("PATCH", "spec"),
]


def _url(kind: str, fid: str, vid: str, deployment: dict[str, Any]) -> str:
    if kind == "version":
        return path(fid, vid)
    if kind == "id":
        return f"/v2/nvcf/deployments/{deployment['deploymentId']}"
    spec_id = deployment["deploymentSpecifications"][0]["gpuSpecificationId"]
    return f"/v2/nvcf/deployments/{deployment['deploymentId']}/gpu-specifications/{spec_id}"


def _payload(method: str, deployment: dict[str, Any]) -> dict[str, Any] | None:
    if method == "POST":
        return deployment_body()
    if method == "PUT":
        return deployment_body(gpuSpecificationId=deployment["deploymentSpecifications"][0]["gpuSpecificationId"])
    if method == "PATCH":
        return {"maxInstances": 2}
    return None


@pytest.mark.parametrize(("method", "kind"), ENDPOINTS)
async def test_without_bearer_is_401(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, method: str, kind: str
) -> None:
    fid, vid = await new_function(api, admin)
    deployment = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    response = await api.request(method, _url(kind, fid, vid, deployment), json=_payload(method, deployment))
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert await row(gateway, vid) == before


@pytest.mark.parametrize(("method", "kind"), ENDPOINTS)
async def test_key_without_deploy_scope_is_403(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    keys_client: httpx.AsyncClient,
    gateway: Gateway,
    method: str,
    kind: str,
) -> None:
    fid, vid = await new_function(api, admin)
    deployment = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    token = await admin_token(keys_client)
    key = await create_key(keys_client, token, key_body(scopes=["list_functions", "queue_details"]))
    headers = {"Authorization": f"Bearer {key['value']}"}
    response = await api.request(
        method, _url(kind, fid, vid, deployment), json=_payload(method, deployment), headers=headers
    )
    problem = assert_problem(response, 403, "forbidden")
    assert "deploy_function" in problem["detail"]
    assert await row(gateway, vid) == before


async def test_key_with_deploy_scope_works(
    api: httpx.AsyncClient, admin: dict[str, str], keys_client: httpx.AsyncClient
) -> None:
    fid, vid = await new_function(api, admin)
    key = await create_key(keys_client, await admin_token(keys_client), key_body(scopes=["deploy_function"]))
    headers = {"Authorization": f"Bearer {key['value']}"}
    deployment = await deploy(api, headers, fid, vid)
    assert assert_json(await api.get(path(fid, vid), headers=headers)) == {"deployment": deployment}


@pytest.mark.parametrize(("method", "kind"), ENDPOINTS)
async def test_other_accounts_deployment_is_404(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    other_admin: dict[str, str],
    gateway: Gateway,
    method: str,
    kind: str,
) -> None:
    fid, vid = await new_function(api, admin)
    deployment = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    response = await api.request(
        method, _url(kind, fid, vid, deployment), json=_payload(method, deployment), headers=other_admin
    )
    assert_problem(response, 404, "not-found")
    assert await row(gateway, vid) == before


@pytest.mark.parametrize(("method", "kind"), ENDPOINTS)
async def test_shared_account_reads_nothing_and_writes_nothing(
    api: httpx.AsyncClient,
    admin: dict[str, str],
    other_admin: dict[str, str],
    gateway: Gateway,
    method: str,
    kind: str,
) -> None:
    """Sharing lets another account invoke, not see or change the deployment: 403 on writes by
    function path (it can see the function), 404 wherever the deployment itself is looked up."""
    fid, vid = await new_function(api, admin)
    deployment = await deploy(api, admin, fid, vid)
    await share(gateway, fid)
    before = await row(gateway, vid)
    response = await api.request(
        method, _url(kind, fid, vid, deployment), json=_payload(method, deployment), headers=other_admin
    )
    expected = 403 if kind == "version" and method != "GET" else 404
    assert_problem(response, expected)
    assert await row(gateway, vid) == before


async def test_shared_account_cannot_deploy(
    api: httpx.AsyncClient, admin: dict[str, str], other_admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    await share(gateway, fid)
    problem = assert_problem(await api.post(path(fid, vid), json=deployment_body(), headers=other_admin), 403)
    assert problem["detail"] == f"Function '{fid}' is owned by a different account"
    assert await row(gateway, vid) is None


# --- PUT (deprecated) ------------------------------------------------------------------------------


async def test_put_updates_counts_and_concurrency(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid, deployment_body(minInstances=0, maxInstances=1))
    spec_id = created["deploymentSpecifications"][0]["gpuSpecificationId"]
    body = deployment_body(minInstances=0, maxInstances=4, maxRequestConcurrency=32)
    deployment = assert_json(await api.put(path(fid, vid), json=body, headers=admin))["deployment"]
    assert set(deployment) == DEPLOYMENT_FIELDS
    assert deployment["deploymentId"] == created["deploymentId"]
    assert deployment["createdAt"] == created["createdAt"]
    [spec] = deployment["deploymentSpecifications"]
    assert spec == {
        "gpuSpecificationId": spec_id,
        "gpu": "H100",
        "instanceType": "NCP.GPU.H100_1x",
        "minInstances": 0,
        "maxInstances": 4,
        "maxRequestConcurrency": 32,
    }
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.versions[vid].max_request_concurrency == 32
    assert assert_json(await api.get(path(fid, vid), headers=admin)) == {"deployment": deployment}


def _put_body(created: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    spec = dict(created["deploymentSpecifications"][0])
    spec.update(overrides)
    return {"deploymentSpecifications": [spec]}


INVALID_PUTS: list[tuple[str, dict[str, Any]]] = [
    ("other gpu", {"gpu": "A100"}),
    ("other instance type", {"instanceType": "NCP.GPU.H100_2x"}),
    ("other backend", {"backend": "GFN"}),
    ("other clusters", {"clusters": ["c9"]}),
    ("unknown spec id", {"gpuSpecificationId": str(uuid.uuid4())}),
    ("min above max", {"minInstances": 5, "maxInstances": 2}),
    ("concurrency too high", {"maxRequestConcurrency": 20000}),
    ("gpu missing", {"gpu": None}),
]


@pytest.mark.parametrize(("case", "change"), INVALID_PUTS, ids=[case for case, _ in INVALID_PUTS])
async def test_invalid_put_is_400_and_changes_nothing(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, case: str, change: dict[str, Any]
) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    assert_problem(await api.put(path(fid, vid), json=_put_body(created, **change), headers=admin), 400)
    assert await row(gateway, vid) == before


async def test_put_needs_every_spec_and_ids_when_several(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    body = deployment_body()
    body["deploymentSpecifications"].append(
        {"gpu": "A100", "instanceType": "NCP.GPU.A100_1x", "minInstances": 0, "maxInstances": 2}
    )
    created = await deploy(api, admin, fid, vid, body)
    before = await row(gateway, vid)
    one = _put_body(created, maxInstances=3)
    assert_problem(await api.put(path(fid, vid), json=one, headers=admin), 400)
    without_ids = {
        "deploymentSpecifications": [
            {k: v for k, v in s.items() if k != "gpuSpecificationId"} for s in created["deploymentSpecifications"]
        ]
    }
    problem = assert_problem(await api.put(path(fid, vid), json=without_ids, headers=admin), 400)
    assert "use PATCH endpoint" in problem["detail"]
    assert await row(gateway, vid) == before
    both = {"deploymentSpecifications": [dict(s, maxInstances=5) for s in created["deploymentSpecifications"]]}
    updated = assert_json(await api.put(path(fid, vid), json=both, headers=admin))["deployment"]
    assert [s["maxInstances"] for s in updated["deploymentSpecifications"]] == [5, 5]


async def test_put_on_undeployed_version_is_400(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    problem = assert_problem(await api.put(path(fid, vid), json=deployment_body(), headers=admin), 400)
    assert problem["detail"] == f"Function id '{fid}', version '{vid}': Invalid status 'INACTIVE'"
    assert await row(gateway, vid) is None


# --- DELETE ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "graceful"), [("", False), ("?graceful=false", False), ("?graceful=true", True)])
async def test_delete_undeploys(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, query: str, graceful: bool
) -> None:
    calls: list[tuple[str, str, bool]] = []

    async def hook(function_id: str, version_id: str, flag: bool) -> None:
        calls.append((function_id, version_id, flag))

    gateway.runtime.catalog.undeploy_hooks.append(hook)
    fid, vid = await new_function(api, admin)
    await deploy(api, admin, fid, vid)
    body = assert_json(await api.delete(path(fid, vid) + query, headers=admin))
    assert set(body) == {"function"}
    function = body["function"]
    assert function["id"] == fid and function["versionId"] == vid
    assert function["status"] == "INACTIVE"
    assert "activeInstances" not in function and "secrets" not in function
    assert calls == [(fid, vid, graceful)]
    assert await row(gateway, vid) is None
    assert await status(gateway, fid, vid) == "INACTIVE"
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.versions[vid].status == "INACTIVE"
    assert_problem(await api.get(path(fid, vid), headers=admin), 404)
    # It can be deployed again.
    assert (await deploy(api, admin, fid, vid))["functionStatus"] == "DEPLOYING"


async def test_delete_with_bad_graceful_is_400(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    problem = assert_problem(await api.delete(path(fid, vid) + "?graceful=maybe", headers=admin), 400)
    assert "graceful" in problem["detail"]
    assert await row(gateway, vid) == before
    assert await status(gateway, fid, vid) == "DEPLOYING"


async def test_delete_undeployed_is_404(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    assert_problem(await api.delete(path(fid, vid), headers=admin), 404, "not-found")
    assert await status(gateway, fid, vid) == "INACTIVE"


async def test_deleting_the_function_removes_its_deployment(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    response = await api.delete(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=admin)
    assert response.status_code == 204
    assert await row(gateway, vid) is None
    assert_problem(await api.get(f"/v2/nvcf/deployments/{created['deploymentId']}", headers=admin), 404)


# --- PATCH gpu-specifications ----------------------------------------------------------------------


def spec_url(deployment: dict[str, Any], index: int = 0) -> str:
    spec_id = deployment["deploymentSpecifications"][index]["gpuSpecificationId"]
    return f"/v2/nvcf/deployments/{deployment['deploymentId']}/gpu-specifications/{spec_id}"


async def test_patch_updates_one_specification(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid, deployment_body(minInstances=0, maxInstances=1))
    response = await api.patch(spec_url(created), json={"minInstances": 0, "maxInstances": 3}, headers=admin)
    body = assert_json(response)
    assert set(body) == {"gpuSpecification"}
    expected = dict(created["deploymentSpecifications"][0], maxInstances=3)
    assert body["gpuSpecification"] == expected
    current = assert_json(await api.get(path(fid, vid), headers=admin))["deployment"]
    assert current["deploymentSpecifications"] == [expected]
    assert current["deploymentId"] == created["deploymentId"]


async def test_patch_autoscaling_custom_then_platform(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    config = {"scaleUpDetails": {"factor": 1.5, "threshold": 70}, "scaleDownDetails": {"factor": 0.5, "threshold": 5}}
    custom = assert_json(await api.patch(spec_url(created), json={"autoscalingConfiguration": config}, headers=admin))
    assert custom["gpuSpecification"]["autoscalingConfiguration"] == config
    assert custom["gpuSpecification"]["minInstances"] == 1
    platform = assert_json(
        await api.patch(
            spec_url(created), json={"autoscalingConfigurationPolicy": "PLATFORM_CONFIGURATION"}, headers=admin
        )
    )
    assert "autoscalingConfiguration" not in platform["gpuSpecification"]
    assert platform["gpuSpecification"] == created["deploymentSpecifications"][0]


INVALID_PATCHES: list[tuple[str, Any, int]] = [
    ("empty", {}, 400),
    ("only unknown fields", {"gpu": "A100"}, 400),
    ("min negative", {"minInstances": -1}, 400),
    ("max zero", {"maxInstances": 0}, 400),
    ("min above current max", {"minInstances": 2}, 400),
    ("max below current min", {"maxInstances": 1, "minInstances": 2}, 400),
    ("unknown policy", {"autoscalingConfigurationPolicy": "AUTO"}, 400),
    ("bad autoscaling", {"autoscalingConfiguration": {"scaleUpDetails": {"factor": 0.9, "threshold": 1}}}, 400),
    ("not an object", [1], 400),
]


@pytest.mark.parametrize(("case", "body", "code"), INVALID_PATCHES, ids=[case for case, _, _ in INVALID_PATCHES])
async def test_invalid_patch_changes_nothing(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, case: str, body: Any, code: int
) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    assert_problem(await api.patch(spec_url(created), json=body, headers=admin), code)
    assert await row(gateway, vid) == before


async def test_patch_min_above_current_max_detail(api: httpx.AsyncClient, admin: dict[str, str]) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    problem = assert_problem(await api.patch(spec_url(created), json={"minInstances": 2}, headers=admin), 400)
    assert problem["detail"] == "Invalid request: minInstances '2' must be lesser than or equal to maxInstances '1'"


async def test_patch_unknown_ids_are_404(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    fid, vid = await new_function(api, admin)
    created = await deploy(api, admin, fid, vid)
    before = await row(gateway, vid)
    unknown_spec = f"/v2/nvcf/deployments/{created['deploymentId']}/gpu-specifications/{uuid.uuid4()}"
    problem = assert_problem(await api.patch(unknown_spec, json={"maxInstances": 2}, headers=admin), 404)
    assert problem["detail"].startswith("Invalid request: Unknown gpu-specification-id")
    spec_id = created["deploymentSpecifications"][0]["gpuSpecificationId"]
    unknown_deployment = f"/v2/nvcf/deployments/{uuid.uuid4()}/gpu-specifications/{spec_id}"
    assert_problem(await api.patch(unknown_deployment, json={"maxInstances": 2}, headers=admin), 404)
    assert await row(gateway, vid) == before


async def test_openapi_lists_the_deployment_operations(api: httpx.AsyncClient) -> None:
    document = assert_json(await api.get("/v3/openapi"))
    paths = document["paths"]
    version = "/v2/nvcf/deployments/functions/{functionId}/versions/{functionVersionId}"
    assert set(paths[version]) >= {"get", "post", "put", "delete"}
    assert paths[version]["put"].get("deprecated") is True
    assert "get" in paths["/v2/nvcf/deployments/{deploymentId}"]
    assert "patch" in paths["/v2/nvcf/deployments/{deploymentId}/gpu-specifications/{gpuSpecId}"]
