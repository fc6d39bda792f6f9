"""Operator mirrors as nvcf-cli's admin commands call them: ``/v2/nvcf/accounts/{ncaId}/secrets|queues/…``
(JWT ``admin:<scope>``, acting for the path's account) and NVCT's ``/v1/nvct/accounts/{ncaId}/usage/gpus``."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import TASK_KEY_DEFAULT_SCOPES
from tests.conftest import ClientFactory
from tests.control.conftest import OTHER_NCA_ID, Minter
from tests.control.helpers import create_function, deployment_body
from tests.gateway.helpers import assert_problem
from tests.tasks.conftest import task_body

SECRET = {"secrets": [{"name": "API_TOKEN", "value": "operator-set"}]}


@pytest.fixture
def super_admin(mint: Minter, gateway: Gateway) -> dict[str, str]:
    """A JWT of the default account holding the cross-account admin scopes."""
    scopes = ("admin:update_secrets", "admin:queue_details", "admin:list_tasks")
    return {"Authorization": f"Bearer {mint(gateway.settings.admin_client_id, scopes)}"}


async def test_an_operator_sets_the_secrets_of_another_accounts_function(
    api: httpx.AsyncClient, other_admin: dict[str, str], super_admin: dict[str, str], admin: dict[str, str],
    gateway: Gateway,
) -> None:  # fmt: skip
    function = await create_function(api, other_admin)
    fid, vid = function["id"], function["versionId"]
    path = f"/secrets/functions/{fid}/versions/{vid}"
    response = await api.put(f"/v2/nvcf/accounts/{OTHER_NCA_ID}{path}", json=SECRET, headers=super_admin)
    assert response.status_code == 204, response.text
    version = await gateway.runtime.catalog.functions.get(fid, vid)
    assert version is not None and list(version.secret_names) == ["API_TOKEN"]
    # The plain scope is not enough, and the mirror acts for the path's account only.
    assert_problem(await api.put(f"/v2/nvcf/accounts/{OTHER_NCA_ID}{path}", json=SECRET, headers=admin), 403)
    assert_problem(await api.put(f"/v2/nvcf/accounts/nvcf-default{path}", json=SECRET, headers=super_admin), 404)
    assert_problem(await api.put(f"/v2/nvcf/accounts/no-such-account{path}", json=SECRET, headers=super_admin), 404)


async def test_an_operator_reads_the_queues_of_another_account(
    api: httpx.AsyncClient, other_admin: dict[str, str], super_admin: dict[str, str]
) -> None:
    function = await create_function(api, other_admin)
    fid, vid = function["id"], function["versionId"]
    deployed = await api.post(
        f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}",
        json=deployment_body(minInstances=0),
        headers=other_admin,
    )
    assert deployed.status_code == 200, deployed.text
    base = f"/v2/nvcf/accounts/{OTHER_NCA_ID}/queues/functions/{fid}"
    for path in (base, f"{base}/versions/{vid}"):
        response = await api.get(path, headers=super_admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["functionId"] == fid
        assert [(q["functionVersionId"], q["queueDepth"]) for q in body["queues"]] == [(vid, 0)]
    assert_problem(await api.get(f"/v2/nvcf/accounts/nvcf-default/queues/functions/{fid}", headers=super_admin), 404)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_problem(
        await api.get(f"/v2/nvcf/accounts/{OTHER_NCA_ID}/queues/{unknown}/position", headers=super_admin), 404
    )


async def test_gpu_usage_of_an_accounts_tasks(
    client_factory: ClientFactory, gateway: Gateway, mint: Minter, super_admin: dict[str, str]
) -> None:
    tasks = client_factory("tasks.localhost")
    owner = {"Authorization": f"Bearer {mint(gateway.settings.admin_client_id, TASK_KEY_DEFAULT_SCOPES)}"}
    for _ in range(2):
        created = await tasks.post("/v1/nvct/tasks", json=task_body(), headers=owner)
        assert created.status_code == 200, created.text
    response = await tasks.get("/v1/nvct/accounts/nvcf-default/usage/gpus", headers=super_admin)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ncaId": "nvcf-default",
        "gpuUsage": [{"gpu": "H100", "instanceType": "NCP.GPU.H100_1x", "queuedTasks": 2, "runningTasks": 0}],
    }
    assert_problem(await tasks.get("/v1/nvct/accounts/nvcf-default/usage/gpus", headers=owner), 403)
    assert_problem(await tasks.get("/v1/nvct/accounts/no-such-account/usage/gpus", headers=super_admin), 404)
