"""NVIDIA's ``ngcsdk`` (a test dependency) against a real gateway process, configured as a user
would: ``NGC_CLI_API_URL`` names the gateway (ngcsdk forces HTTPS, so the gateway serves TLS;
``REQUESTS_CA_BUNDLE`` trusts its certificate), and the gateway answers the api service on that
URL's host (``--api-host 127.0.0.1``), since ngcsdk sends it as ``Host``.

The SDK runs in its own process (``tests/support/ngc_driver.py``); each call's outcome is asserted
here, including the ones cfgate does not serve (teams), so a change in either is seen.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.tls import self_signed
from gateway.auth.scopes import TASK_KEY_DEFAULT_SCOPES
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.multiproc.conftest import Spawn
from tests.multiproc.processes import GatewayProcess
from tests.tasks.conftest import task_body

ROOT = Path(__file__).resolve().parents[2]
ORG = "nvcf-default"


async def wait_tls_healthy(gateway: GatewayProcess, cert: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert)), timeout=1.0) as client:
        while time.monotonic() < deadline:
            assert gateway.proc.poll() is None, gateway.output()[-3000:]
            try:
                if (await client.get(f"https://127.0.0.1:{gateway.port}/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the TLS gateway did not become healthy")


def client(gateway: GatewayProcess, cert: Path, host: str) -> httpx.AsyncClient:
    base = f"https://127.0.0.1:{gateway.port}"
    return httpx.AsyncClient(
        base_url=base, headers={"Host": host}, verify=ssl.create_default_context(cafile=str(cert)), timeout=30
    )


async def credentials(gateway: GatewayProcess, cert: Path) -> dict[str, str]:
    async with client(gateway, cert, "api-keys.localhost") as keys:
        admin = (await keys.post("/v1/admin/keys")).json()["value"]
        tasks = await keys.post("/v1/admin/keys", json={"scopes": list(TASK_KEY_DEFAULT_SCOPES)})
        key = await keys.post("/v1/keys", json=key_body(), headers={**KEY_HEADERS, "Authorization": f"Bearer {admin}"})
    assert key.status_code == 200, key.text
    return {"jwt": admin, "task_jwt": tasks.json()["value"], "key": key.json()["value"]}


def drive(gateway: GatewayProcess, cert: Path, home: Path, creds: dict[str, str]) -> dict[str, Any]:
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NGC_", "CFGATE_"))}
    env.update(
        HOME=str(home), PYTHONPATH=str(ROOT), REQUESTS_CA_BUNDLE=str(cert),
        NGC_CLI_API_URL=f"http://127.0.0.1:{gateway.port}",  # as a user writes it; ngcsdk makes it https
        NGC_DRIVER_ORG=ORG, NGC_DRIVER_JWT=creds["jwt"], NGC_DRIVER_KEY=creds["key"],
        NGC_DRIVER_TASK_JWT=creds["task_jwt"],
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.ngc_driver"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # ngcsdk prints some refusals to stdout itself; the driver's report is the last line.
    outcomes: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcomes


def result(outcomes: dict[str, Any], call: str) -> Any:
    outcome = outcomes[call]
    assert outcome["ok"], f"{call}: {outcome['error']}"
    return outcome["result"]


def refused(outcomes: dict[str, Any], call: str) -> str:
    outcome = outcomes[call]
    assert not outcome["ok"], f"{call} unexpectedly worked: {outcome['result']}"
    error: str = outcome["error"]
    return error


async def test_ngcsdk_manages_functions_and_lists_tasks(gateways: Spawn, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    gateway = gateways(
        database=f"sqlite:///{tmp_path}/store.sqlite", redis=None,
        CFGATE_TLS_CERT=str(cert), CFGATE_TLS_KEY=str(key), CFGATE_API_HOSTS="127.0.0.1",
    )  # fmt: skip
    await wait_tls_healthy(gateway, cert)
    creds = await credentials(gateway, cert)
    async with client(gateway, cert, "tasks.localhost") as nvct:
        task = await nvct.post(
            "/v1/nvct/tasks", json=task_body(), headers={"Authorization": f"Bearer {creds['task_jwt']}"}
        )
    assert task.status_code == 200, task.text

    outcomes = await asyncio.to_thread(drive, gateway, cert, tmp_path / "home", creds)

    assert result(outcomes, "configure(jwt, org)") is None  # GET /v2/orgs named the account
    assert result(outcomes, "functions.list") == {"functions": []}
    created = result(outcomes, "functions.create")["function"]
    fid, vid = created["id"], created["versionId"]
    assert (created["name"], created["ncaId"], created["status"]) == ("ngc-echo", ORG, "INACTIVE")
    assert result(outcomes, "functions.info")["function"]["versionId"] == vid
    assert [f["versionId"] for f in result(outcomes, "functions.list(function_id)")["functions"]] == [vid]
    assert result(outcomes, "functions.update_secrets") is None
    deployment = result(outcomes, "deployments.create")["deployment"]
    assert (deployment["functionId"], deployment["functionVersionId"]) == (fid, vid)
    assert deployment["deploymentSpecifications"][0]["maxRequestConcurrency"] == 2
    assert result(outcomes, "deployments.info")["deployment"]["deploymentId"] == deployment["deploymentId"]
    listed = result(outcomes, "deployments.list")["deployments"]
    assert [d["deploymentId"] for d in listed] == [deployment["deploymentId"]]
    assert result(outcomes, "deployments.delete")["function"]["status"] == "INACTIVE"
    assert result(outcomes, "functions.delete") is None
    assert "404" in refused(outcomes, "functions.info(deleted)")
    # Org = account: another org is not the caller's.
    assert "Invalid org" in refused(outcomes, "configure(jwt, other org)")
    # cfgate has no teams: configure() validates a team against NGC's team list, not served.
    assert "/v2/org/nvcf-default/teams" in refused(outcomes, "configure(jwt, org, team)")
    # An nvapi- key: POST /v3/keys/get-caller-info tells ngcsdk its org.
    assert result(outcomes, "configure(nvapi key)") is None
    assert result(outcomes, "org of the nvapi key") == ORG
    assert result(outcomes, "functions.list(nvapi key)") == {"functions": []}
    # NVCT through the api host: /v2/orgs/{org}/nvct/tasks.
    assert result(outcomes, "configure(task jwt, org)") is None
    assert [t["id"] for t in result(outcomes, "tasks.list")] == [task.json()["task"]["id"]]


async def test_org_paths_get_caller_info_and_the_api_host_alias(gateways: Spawn, tmp_path: Path) -> None:
    """The same contract by plain HTTP: what each refusal looks like."""
    cert, key = self_signed(tmp_path / "tls")
    gateway = gateways(
        database=f"sqlite:///{tmp_path}/store.sqlite", redis=None,
        CFGATE_TLS_CERT=str(cert), CFGATE_TLS_KEY=str(key), CFGATE_API_HOSTS="127.0.0.1,nvcf.example.com",
    )  # fmt: skip
    await wait_tls_healthy(gateway, cert)
    creds = await credentials(gateway, cert)
    admin = {"Authorization": f"Bearer {creds['jwt']}"}
    for host in ("127.0.0.1", f"127.0.0.1:{gateway.port}", "NVCF.example.com", "api.localhost"):
        async with client(gateway, cert, host) as api:
            response = await api.get(f"/v2/orgs/{ORG}/teams/any-team/nvcf/functions", headers=admin)
            assert response.status_code == 200, (host, response.text)
            assert response.json() == {"functions": []}
    async with client(gateway, cert, "other.example.com") as unknown:
        assert (await unknown.get("/v2/nvcf/functions", headers=admin)).status_code == 404
    async with client(gateway, cert, "127.0.0.1") as api:
        other = await api.get("/v2/orgs/someone-else/nvcf/functions", headers=admin)
        assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
        assert (await api.get(f"/v2/orgs/{ORG}/nvcf/functions")).status_code == 401
        info = await api.post("/v3/keys/get-caller-info", data={"credentials": creds["key"]})
        assert info.status_code == 200, info.text
        body = info.json()
        assert (body["type"], body["orgName"], body["products"]) == ("SERVICE_KEY", ORG, ["nv-cloud-functions"])
        bogus = await api.post("/v3/keys/get-caller-info", data={"credentials": "nvapi-" + "x" * 60})
        assert bogus.status_code == 401 and bogus.headers["content-type"] == "application/problem+json"
        jwt = await api.post("/v3/keys/get-caller-info", data={"credentials": creds["jwt"]})
        assert jwt.status_code == 401  # only API keys are described
        missing = await api.post("/v3/keys/get-caller-info", data={})
        assert missing.status_code == 400
        assert (await api.get("/v2/orgs")).status_code == 401
        orgs = await api.get("/v2/orgs", headers=admin)
        assert orgs.status_code == 200
        assert orgs.json()["organizations"] == [{"name": ORG, "displayName": ORG}]
        assert creds["key"] not in gateway.output()
