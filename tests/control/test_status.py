"""Function status driven by the deployment and live worker instances, seen by every reader.

Workers (de)register ``LiveInstance``s on ``runtime.instances``; the catalog listens and moves the
version DEPLOYING → ACTIVE (≥ minInstances) → DEGRADED (below) → ACTIVE, INACTIVE after undeploy.
Each state is checked through GET of the function, GET of the deployment, and the routing cache.
"""

from __future__ import annotations

import httpx

from gateway.app import Gateway
from invoker.instances import LiveInstance
from tests.control.helpers import create_function, deployment_body
from tests.gateway.helpers import admin_token, create_key, key_body


def deployment_path(fid: str, vid: str) -> str:
    return f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"


def instance(fid: str, vid: str, n: int, nca_id: str = "nvcf-default") -> LiveInstance:
    return LiveInstance(
        instance_id=f"worker-{n}",
        function_id=fid,
        version_id=vid,
        nca_id=nca_id,
        gpu="H100",
        instance_type="NCP.GPU.H100_1x",
        backend="local",
        location="us-west-1",
        started_at=1_700_000_000_000 + n,
        updated_at=1_700_000_000_500 + n,
    )


async def assert_status(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, fid: str, vid: str, expected: str
) -> None:
    function = await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=admin)
    assert function.status_code == 200
    assert function.json()["function"]["status"] == expected
    deployment = await api.get(deployment_path(fid, vid), headers=admin)
    if expected == "INACTIVE":
        assert deployment.status_code == 404
    else:
        assert deployment.status_code == 200
        assert deployment.json()["deployment"]["functionStatus"] == expected
    route = gateway.runtime.routes.get(fid)
    assert route is not None
    assert route.versions[vid].status == expected


async def test_live_instances_drive_the_status(api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway) -> None:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    instances = gateway.runtime.instances
    await assert_status(api, admin, gateway, fid, vid, "INACTIVE")

    response = await api.post(
        deployment_path(fid, vid), json=deployment_body(minInstances=2, maxInstances=3), headers=admin
    )
    assert response.status_code == 200
    await assert_status(api, admin, gateway, fid, vid, "DEPLOYING")

    await instances.register(instance(fid, vid, 1))
    await assert_status(api, admin, gateway, fid, vid, "DEPLOYING")  # 1 < minInstances
    route = gateway.runtime.routes.get(fid)
    assert route is not None and not route.versions[vid].invocable

    await instances.register(instance(fid, vid, 2))
    await assert_status(api, admin, gateway, fid, vid, "ACTIVE")
    route = gateway.runtime.routes.get(fid)
    assert route is not None and route.versions[vid].invocable

    await instances.deregister("worker-1")
    await assert_status(api, admin, gateway, fid, vid, "DEGRADED")

    await instances.register(instance(fid, vid, 3))
    await assert_status(api, admin, gateway, fid, vid, "ACTIVE")

    response = await api.delete(deployment_path(fid, vid), headers=admin)
    assert response.status_code == 200
    assert response.json()["function"]["status"] == "INACTIVE"
    await assert_status(api, admin, gateway, fid, vid, "INACTIVE")
    # Workers still connected do not bring an undeployed version back.
    await instances.register(instance(fid, vid, 4))
    await assert_status(api, admin, gateway, fid, vid, "INACTIVE")


async def test_details_list_shows_active_instances(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, keys_client: httpx.AsyncClient
) -> None:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    assert (await api.post(deployment_path(fid, vid), json=deployment_body(), headers=admin)).status_code == 200
    await gateway.runtime.instances.register(instance(fid, vid, 1))

    listed = await api.get("/v2/nvcf/functions", headers=admin)  # the admin token has list_functions_details
    assert listed.status_code == 200
    [function] = [f for f in listed.json()["functions"] if f["versionId"] == vid]
    assert function["status"] == "ACTIVE"
    assert function["activeInstances"] == [
        {
            "instanceId": "worker-1",
            "functionId": fid,
            "functionVersionId": vid,
            "instanceType": "NCP.GPU.H100_1x",
            "instanceStatus": "ACTIVE",
            "ncaId": "nvcf-default",
            "gpu": "H100",
            "backend": "local",
            "location": "us-west-1",
            "instanceCreatedAt": "2023-11-14T22:13:20.001Z",
            "instanceUpdatedAt": "2023-11-14T22:13:20.501Z",
        }
    ]
    # Without list_functions_details there are no instances in the listing.
    key = await create_key(keys_client, await admin_token(keys_client), key_body(scopes=["list_functions"]))
    plain = await api.get("/v2/nvcf/functions", headers={"Authorization": f"Bearer {key['value']}"})
    assert plain.status_code == 200
    [function] = [f for f in plain.json()["functions"] if f["versionId"] == vid]
    assert function["status"] == "ACTIVE"
    assert "activeInstances" not in function


async def test_instances_present_before_deploying_make_it_active(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    await gateway.runtime.instances.register(instance(fid, vid, 1))
    await assert_status(api, admin, gateway, fid, vid, "INACTIVE")  # no deployment yet
    response = await api.post(deployment_path(fid, vid), json=deployment_body(), headers=admin)
    assert response.json()["deployment"]["functionStatus"] == "ACTIVE"
    await assert_status(api, admin, gateway, fid, vid, "ACTIVE")


async def test_patching_min_instances_moves_the_status(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    dto = await create_function(api, admin)
    fid, vid = dto["id"], dto["versionId"]
    body = deployment_body(minInstances=1, maxInstances=4)
    created = (await api.post(deployment_path(fid, vid), json=body, headers=admin)).json()["deployment"]
    await gateway.runtime.instances.register(instance(fid, vid, 1))
    await assert_status(api, admin, gateway, fid, vid, "ACTIVE")
    spec_id = created["deploymentSpecifications"][0]["gpuSpecificationId"]
    url = f"/v2/nvcf/deployments/{created['deploymentId']}/gpu-specifications/{spec_id}"

    raised = await api.patch(url, json={"minInstances": 2}, headers=admin)
    assert raised.status_code == 200
    await assert_status(api, admin, gateway, fid, vid, "DEGRADED")

    lowered = await api.patch(url, json={"minInstances": 0}, headers=admin)
    assert lowered.status_code == 200
    await assert_status(api, admin, gateway, fid, vid, "ACTIVE")


async def test_deployment_of_one_version_leaves_the_others(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway
) -> None:
    dto = await create_function(api, admin)
    fid, first = dto["id"], dto["versionId"]
    second_response = await api.post(
        f"/v2/nvcf/functions/{fid}/versions",
        json=dict(name="echo", inferenceUrl="/echo", containerImage="nvcr.io/example/echo:2.0"),
        headers=admin,
    )
    assert second_response.status_code == 200
    second = second_response.json()["function"]["versionId"]
    assert (
        await api.post(deployment_path(fid, second), json=deployment_body(minInstances=0), headers=admin)
    ).status_code == 200
    await assert_status(api, admin, gateway, fid, second, "ACTIVE")
    await assert_status(api, admin, gateway, fid, first, "INACTIVE")
    await gateway.runtime.instances.register(instance(fid, first, 1))
    await assert_status(api, admin, gateway, fid, first, "INACTIVE")
