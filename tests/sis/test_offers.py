"""What registered clusters offer: ``GET /v2/nvcf/clusterGroups`` and the deployment GPU check.

No cluster usable by the account: every GPU is accepted (the embedded default and ``cfgate
demo``). Once one exists (its own, or another account's it named by id and that offers itself to
it), a deployment naming a GPU or instance type that no such cluster offers is a 400 problem and
nothing is written. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.problems import BadRequest
from gateway.services.clusters.offers import group_id, validate_gpu
from gateway.services.clusters.placement import check_task_gpu
from gateway.store import schema
from gateway.store.clusters import Cluster
from tests.control.helpers import create_function, deployment_body
from tests.gateway.helpers import assert_problem
from tests.sis.conftest import OTHER_NCA_ID, Minter
from tests.sis.helpers import DEFAULT_NCA, bearer, gpu, register

OPERATOR = (
    "register_function",
    "list_functions_details",
    "deploy_function",
    "list_cluster_groups",
    "cluster-management",
)


def deploy_path(dto: dict[str, Any]) -> str:
    return f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"


async def deployments(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return len((await conn.execute(select(schema.deployments.c.deployment_id))).all())


@pytest.fixture
def operator(gateway: Gateway, mint: Minter) -> dict[str, str]:
    return bearer(mint(gateway.settings.admin_client_id, OPERATOR))


async def test_without_clusters_any_gpu_deploys(api: httpx.AsyncClient, operator: dict[str, str]) -> None:
    dto = await create_function(api, operator)
    response = await api.post(
        deploy_path(dto), json=deployment_body(gpu="ANY-GPU", instanceType="whatever"), headers=operator
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("gpu_name", "instance_type", "detail"),
    [
        ("B200", "B200_1x", "GPU 'B200' is not offered by any cluster available to the account (offered: h100, l40s)"),
        ("H100", "NCP.GPU.H100_8x", "Instance type 'NCP.GPU.H100_8x' is not offered for GPU 'H100'"),
        ("L40S", "NCP.GPU.H100_1x", "Instance type 'NCP.GPU.H100_1x' is not offered for GPU 'L40S'"),
    ],
)
async def test_unknown_gpu_or_instance_type_is_400(
    api: httpx.AsyncClient,
    sis: httpx.AsyncClient,
    operator: dict[str, str],
    gateway: Gateway,
    gpu_name: str,
    instance_type: str,
    detail: str,
) -> None:
    await register(sis, operator)
    await register(sis, operator, clusterName="l40s-rack", gpus=[gpu("L40S", "L40S_1x")])
    dto = await create_function(api, operator)
    response = await api.post(
        deploy_path(dto), json=deployment_body(gpu=gpu_name, instanceType=instance_type), headers=operator
    )
    assert assert_problem(response, 400, "bad-request")["detail"].startswith(detail)
    assert await deployments(gateway) == 0
    function = await api.get(f"/v2/nvcf/functions/{dto['id']}/versions/{dto['versionId']}", headers=operator)
    assert function.json()["function"]["status"] == "INACTIVE"


async def test_offered_gpu_deploys_case_insensitively(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    await register(sis, operator)
    dto = await create_function(api, operator)
    body = deployment_body(gpu="h100", instanceType="ncp.gpu.h100_2x")
    assert (await api.post(deploy_path(dto), json=body, headers=operator)).status_code == 200


async def test_every_specification_is_checked(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway
) -> None:
    await register(sis, operator)
    dto = await create_function(api, operator)
    body = deployment_body()
    body["deploymentSpecifications"].append(
        {**body["deploymentSpecifications"][0], "gpu": "A10", "instanceType": "A10_1x"}
    )
    assert_problem(await api.post(deploy_path(dto), json=body, headers=operator), 400)
    assert await deployments(gateway) == 0


async def test_another_accounts_cluster_counts_only_with_both_consents(
    api: httpx.AsyncClient,
    sis: httpx.AsyncClient,
    operator: dict[str, str],
    other_admin: dict[str, str],
    gateway: Gateway,
) -> None:
    # Another account's cluster exists: it changes nothing for us, any GPU still deploys.
    theirs = await register(sis, other_admin, nca_id=OTHER_NCA_ID, clusterName="theirs")
    first = await create_function(api, operator)
    anything = deployment_body(gpu="ANY-GPU", instanceType="whatever")
    assert (await api.post(deploy_path(first), json=anything, headers=operator)).status_code == 200
    # Naming it without its owner's offer: not usable, so it does not constrain the GPU either.
    named = deployment_body(gpu="ANY-GPU", instanceType="whatever", clusters=[theirs["clusterId"]])
    second = await create_function(api, operator)
    assert (await api.post(deploy_path(second), json=named, headers=operator)).status_code == 200
    # Offered (authorizedNCAIds) and named by id: usable, so its GPUs are checked.
    url = f"/v1/accounts/{OTHER_NCA_ID}/clusters/{theirs['clusterId']}"
    assert (await sis.put(url, json={"authorizedNCAIds": [DEFAULT_NCA]}, headers=other_admin)).status_code == 200
    third = await create_function(api, operator)
    refused = await api.post(deploy_path(third), json=named, headers=operator)
    assert "GPU 'ANY-GPU' is not offered" in assert_problem(refused, 400)["detail"]
    placed = deployment_body(clusters=[theirs["clusterId"]])
    assert (await api.post(deploy_path(third), json=placed, headers=operator)).status_code == 200
    # Offered but not named: still nothing for our other deployments.
    fourth = await create_function(api, operator)
    assert (await api.post(deploy_path(fourth), json=anything, headers=operator)).status_code == 200
    # By name, another account's cluster is never found (names are not unique across accounts).
    fifth = await create_function(api, operator)
    by_name = deployment_body(gpu="ANY-GPU", instanceType="whatever", clusters=["theirs"])
    assert (await api.post(deploy_path(fifth), json=by_name, headers=operator)).status_code == 200


async def test_one_accounts_cluster_never_changes_what_another_deploys(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str], other_admin: dict[str, str]
) -> None:
    """Issue 12 item 6: the other account's registered cluster once made our deployment a 400."""
    await register(sis, other_admin, nca_id=OTHER_NCA_ID, clusterName="theirs", authorizedNCAIds=[DEFAULT_NCA])
    dto = await create_function(api, operator)
    body = deployment_body(gpu="B200", instanceType="B200_1x")
    assert (await api.post(deploy_path(dto), json=body, headers=operator)).status_code == 200


async def test_own_clusters_named_by_placement(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    east = await register(sis, operator)
    await register(sis, operator, clusterName="l40s-rack", clusterGroupName="west", gpus=[gpu("L40S", "L40S_1x")])
    for placement in ({"clusters": ["gpu-east-1"]}, {"clusters": [east["clusterId"]]}, {"backend": "east"}):
        dto = await create_function(api, operator)
        assert (
            await api.post(deploy_path(dto), json=deployment_body(**placement), headers=operator)
        ).status_code == 200
    dto = await create_function(api, operator)
    wrong = await api.post(deploy_path(dto), json=deployment_body(clusters=["l40s-rack"]), headers=operator)
    assert "GPU 'H100' is not offered" in assert_problem(wrong, 400)["detail"]
    unknown = await api.post(deploy_path(dto), json=deployment_body(clusters=["nowhere"]), headers=operator)
    assert "None of the clusters named (nowhere)" in assert_problem(unknown, 400)["detail"]


async def test_deleting_the_last_cluster_accepts_any_gpu_again(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    created = await register(sis, operator)
    dto = await create_function(api, operator)
    assert_problem(await api.post(deploy_path(dto), json=deployment_body(gpu="B200"), headers=operator), 400)
    assert (
        await sis.delete(f"/v1/accounts/{DEFAULT_NCA}/clusters/{created['clusterId']}", headers=operator)
    ).status_code == 200
    assert (await api.post(deploy_path(dto), json=deployment_body(gpu="B200"), headers=operator)).status_code == 200


async def test_cluster_groups_come_from_registered_clusters(
    api: httpx.AsyncClient, sis: httpx.AsyncClient, operator: dict[str, str], other_admin: dict[str, str]
) -> None:
    a = await register(sis, operator, authorizedNCAIds=[OTHER_NCA_ID])
    b = await register(
        sis,
        operator,
        clusterName="gpu-east-2",
        gpus=[gpu("h100", "NCP.GPU.H100_1x", "NCP.GPU.H100_8x"), gpu("A10", "A10_1x")],
    )
    c = await register(sis, operator, clusterName="west-1", clusterGroupName="west", gpus=None)
    response = await api.get("/v2/nvcf/clusterGroups", headers=operator)
    assert response.status_code == 200
    groups = response.json()["clusterGroups"]
    assert groups == [
        {
            "id": group_id(DEFAULT_NCA, "east"),
            "name": "east",
            "ncaId": DEFAULT_NCA,
            "authorizedNcaIds": [OTHER_NCA_ID],
            "gpus": [
                {
                    "name": "H100",
                    "instanceTypes": [
                        {"name": "NCP.GPU.H100_1x", "description": "NCP.GPU.H100_1x node", "default": True},
                        {"name": "NCP.GPU.H100_2x", "description": "NCP.GPU.H100_2x node", "default": False},
                        {"name": "NCP.GPU.H100_8x", "description": "NCP.GPU.H100_8x node", "default": False},
                    ],
                },
                {"name": "A10", "instanceTypes": [{"name": "A10_1x", "description": "A10_1x node", "default": False}]},
            ],
            "clusters": [{"id": a["clusterId"], "name": "gpu-east-1"}, {"id": b["clusterId"], "name": "gpu-east-2"}],
        },
        {
            "id": group_id(DEFAULT_NCA, "west"),
            "name": "west",
            "ncaId": DEFAULT_NCA,
            "authorizedNcaIds": [],
            "gpus": [],
            "clusters": [{"id": c["clusterId"], "name": "west-1"}],
        },
    ]
    # The authorized account sees the group holding the cluster that names it, with that cluster only.
    theirs = (await api.get("/v2/nvcf/clusterGroups", headers=other_admin)).json()["clusterGroups"]
    assert [(g["name"], g["ncaId"], [c["id"] for c in g["clusters"]]) for g in theirs] == [
        ("east", DEFAULT_NCA, [a["clusterId"]])
    ]


async def test_check_task_gpu_for_tasks(sis: httpx.AsyncClient, operator: dict[str, str], gateway: Gateway) -> None:
    repository = gateway.runtime.cluster_registry.repository
    await check_task_gpu(repository, DEFAULT_NCA, {"gpu": "B200"})  # nothing registered yet
    await register(sis, operator)
    await check_task_gpu(repository, DEFAULT_NCA, {"gpu": "H100", "instanceType": "NCP.GPU.H100_2x"})
    with pytest.raises(BadRequest, match="GPU 'B200' is not offered"):
        await check_task_gpu(repository, DEFAULT_NCA, {"gpu": "B200"})
    await check_task_gpu(repository, OTHER_NCA_ID, {"gpu": "B200"})  # our cluster is not theirs


def _cluster(gpus: list[dict[str, Any]]) -> Cluster:
    return Cluster("c", DEFAULT_NCA, "n", "g", "h", {"gpus": gpus}, 0, 0)


def test_validate_gpu_rule() -> None:
    clusters = [_cluster([gpu("H100", "H100_1x")])]
    validate_gpu("B200", "x", [], any_registered=False)  # nothing registered: all pass
    validate_gpu("h100", "H100_1X", clusters, any_registered=True)
    validate_gpu("H100", None, clusters, any_registered=True)  # no instance type to check
    with pytest.raises(BadRequest, match="GPU 'B200' is not offered"):
        validate_gpu("B200", None, clusters, any_registered=True)
    with pytest.raises(BadRequest, match="Instance type 'H100_2x'"):
        validate_gpu("H100", "H100_2x", clusters, any_registered=True)
    with pytest.raises(BadRequest, match=r"offered: none"):
        validate_gpu("H100", None, [], any_registered=True)
