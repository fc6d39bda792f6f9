"""``GET /v2/nvcf/clusterGroups``: JWT-only scope, shape, and the pluggable cluster directory."""

from __future__ import annotations

import httpx

from gateway.app import Gateway
from gateway.services.clusters.offers import RegistryClusterDirectory
from gateway.services.functions.cluster_groups import (
    ClusterDirectory,
    ClusterDto,
    ClusterGroupDto,
    EmptyClusterDirectory,
    GpuDto,
    InstanceTypeDto,
)
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from tests.control.conftest import OPERATOR_SCOPES, Minter
from tests.gateway.helpers import assert_problem, create_key, key_body

PATH = "/v2/nvcf/clusterGroups"


class StaticDirectory:
    """A directory as the SIS registry will be: groups per account."""

    def __init__(self, groups: dict[str, list[ClusterGroupDto]]) -> None:
        self.groups = groups
        self.asked: list[str] = []

    async def cluster_groups(self, nca_id: str) -> list[ClusterGroupDto]:
        self.asked.append(nca_id)
        return self.groups.get(nca_id, [])


async def test_operator_sees_no_groups_by_default(
    gateway: Gateway, api: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    # The SIS registry is the directory; with no cluster registered it knows no groups.
    assert isinstance(gateway.runtime.clusters, RegistryClusterDirectory)
    assert isinstance(gateway.runtime.clusters, ClusterDirectory)
    assert isinstance(EmptyClusterDirectory(), ClusterDirectory)
    response = await api.get(PATH, headers=operator)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"clusterGroups": []}


async def test_groups_come_from_the_directory(
    gateway: Gateway, api: httpx.AsyncClient, operator: dict[str, str], other_admin: dict[str, str]
) -> None:
    group = ClusterGroupDto(
        id="5f0c3d4e-1111-4a2b-9c3d-000000000001",
        name="onprem",
        ncaId="nvcf-default",
        authorizedNcaIds=["other-account"],
        gpus=[
            GpuDto(
                name="H100",
                instanceTypes=[InstanceTypeDto(name="NCP.GPU.H100_1x", description="One H100", default=True)],
            )
        ],
        clusters=[ClusterDto(id="c-1", name="rack-a", k8sVersion="v1.30.2")],
    )
    directory = StaticDirectory({"nvcf-default": [group]})
    gateway.runtime.clusters = directory
    response = await api.get(PATH, headers=operator)
    assert response.status_code == 200
    assert response.json() == {
        "clusterGroups": [
            {
                "id": "5f0c3d4e-1111-4a2b-9c3d-000000000001",
                "name": "onprem",
                "ncaId": "nvcf-default",
                "authorizedNcaIds": ["other-account"],
                "gpus": [
                    {
                        "name": "H100",
                        "instanceTypes": [{"name": "NCP.GPU.H100_1x", "description": "One H100", "default": True}],
                    }
                ],
                "clusters": [{"id": "c-1", "name": "rack-a", "k8sVersion": "v1.30.2"}],
            }
        ]
    }
    assert (await api.get(PATH, headers=other_admin)).json() == {"clusterGroups": []}
    assert directory.asked == ["nvcf-default", "other-account"]


async def test_jwt_only_scope(
    api: httpx.AsyncClient, keys_client: httpx.AsyncClient, admin: dict[str, str], mint: Minter
) -> None:
    assert_problem(await api.get(PATH), 401)
    # The default admin token lacks list_cluster_groups.
    assert_problem(await api.get(PATH, headers=admin), 403, "forbidden")
    without = mint(DEFAULT_ADMIN_CLIENT_ID, [s for s in OPERATOR_SCOPES if s != "list_cluster_groups"])
    assert_problem(await api.get(PATH, headers={"Authorization": f"Bearer {without}"}), 403)
    # An API key is refused even when it carries the scope (apikey:list_cluster_groups does not count).
    # (Made with a token holding it: a key never holds a scope its creator cannot delegate.)
    token = mint(DEFAULT_ADMIN_CLIENT_ID, OPERATOR_SCOPES)
    for scopes in (None, ["list_cluster_groups"]):
        key = (await create_key(keys_client, token, key_body(scopes=scopes)))["value"]
        assert_problem(await api.get(PATH, headers={"Authorization": f"Bearer {key}"}), 403, "forbidden")


async def test_unknown_client_is_404(api: httpx.AsyncClient, mint: Minter) -> None:
    stranger = {"Authorization": f"Bearer {mint('nobody-knows-me', ['list_cluster_groups'])}"}
    assert assert_problem(await api.get(PATH, headers=stranger), 404)["detail"] == "Unknown client_id"
