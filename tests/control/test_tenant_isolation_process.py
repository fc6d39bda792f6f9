"""Issue 12 items 3, 4, 5 against a real ``cfgate serve`` process with three accounts.

Account A is the gateway's default account (the operator's); B and C are admitted through two
trusted issuers that the test serves itself (``tests.support.identity_provider``: their own keys,
their JWKS over loopback HTTP). Every request goes over TCP to the process.

* item 4 — an account is ``(issuer, subject)``: C's issuer minting ``sub=admin-issuer-proxy`` (A's
  admin client) or ``sub=<B's client>`` reaches no account (404 "Unknown client_id") and changes
  nothing; B's own token reaches only B.
* item 3 — keys never exceed their creator: the default admin token cannot mint ``account_setup``,
  a ``list_functions``-only token cannot mint ``register_function``…; the documented function and
  task keys still come out of the default admin token.
* item 5 — a key limited to function X gets 403 on function Y of the same account (read, update,
  deploy, delete, queue details) and Y is untouched.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES, TASK_KEY_DEFAULT_SCOPES, TASKS_PRODUCT
from gateway.settings import DEFAULT_ADMIN_CLIENT_ID
from tests.control.helpers import deployment_body, function_body
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, key_body
from tests.gateway.test_server_process import wait_healthy
from tests.servers import find_free_port
from tests.support.identity_provider import IdentityProvider

ISSUER_B = "https://idp-b.example"
ISSUER_C = "https://idp-c.example"
B_CLIENT = "team-b-admin"
C_CLIENT = "team-c-admin"
PROBLEM = "application/problem+json"


@dataclass
class Site:
    base: str
    idp_b: IdentityProvider
    idp_c: IdentityProvider

    def call(self, host: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.base + path, headers=headers, timeout=30.0, **kwargs)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.call("api.localhost", method, path, token, **kwargs)

    def keys(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return self.call("api-keys.localhost", method, path, token, **kwargs)

    def door_token(self, scopes: list[str] | None = None) -> str:
        """``POST /v1/admin/keys`` from loopback: the operator's token."""
        response = self.keys("POST", "/v1/admin/keys", json={} if scopes is None else {"scopes": scopes})
        assert response.status_code == 200, response.text
        return str(response.json()["value"])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with IdentityProvider(ISSUER_B) as idp_b, IdentityProvider(ISSUER_C) as idp_c:
        port = find_free_port()
        cmd = [
            sys.executable, "-m", "gateway", "serve",
            "--port", str(port), "--grpc-port", "0", "--worker-port", str(find_free_port()),
            "--data-dir", str(tmp_path / "data"),
            "--trusted-issuer", idp_b.trusted_issuer, "--trusted-issuer", idp_c.trusted_issuer,
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base + "/health", proc)
            yield Site(base, idp_b, idp_c)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def create_function(site: Site, token: str) -> tuple[str, str]:
    dto = ok(site.api("POST", "/v2/nvcf/functions", token, json=function_body()))["function"]
    return dto["id"], dto["versionId"]


def provision(site: Site, operator: str, nca_id: str, client: str, issuer: str) -> None:
    body = {"name": nca_id, "adminClientId": client, "adminClientIssuer": issuer}
    ok(site.api("POST", f"/v2/nvcf/accounts/{nca_id}", operator, json=body))


def function_ids(site: Site, token: str) -> list[str]:
    return [f["id"] for f in ok(site.api("GET", "/v2/nvcf/functions", token))["functions"]]


def key_ids(site: Site, token: str) -> list[str]:
    return [k["id"] for k in ok(site.keys("GET", "/v1/keys", token, headers=KEY_HEADERS))["keys"]]


def test_accounts_are_issuer_and_subject(site: Site) -> None:
    operator = site.door_token([*ADMIN_DEFAULT_SCOPES, "account_setup"])
    admin_a = site.door_token()
    provision(site, operator, "team-b", B_CLIENT, ISSUER_B)
    provision(site, operator, "team-c", C_CLIENT, ISSUER_C)
    fid, vid = create_function(site, admin_a)

    # C's issuer with A's subject, and with B's: no account (NVCF's 404 "Unknown client_id").
    for subject in (DEFAULT_ADMIN_CLIENT_ID, B_CLIENT):
        forged = site.idp_c.mint(subject, [*ADMIN_DEFAULT_SCOPES, "account_setup"])
        assert problem(site.api("GET", "/v2/nvcf/functions", forged), 404)["detail"] == "Unknown client_id"
        problem(site.api("DELETE", f"/v2/nvcf/functions/{fid}/versions/{vid}", forged), 404)
        problem(site.keys("POST", "/v1/keys", forged, json=key_body(), headers=KEY_HEADERS), 404)
    assert function_ids(site, admin_a) == [fid]

    # B's own token is B: it sees its own (none) and not A's function.
    token_b = site.idp_b.mint(B_CLIENT, list(ADMIN_DEFAULT_SCOPES))
    assert function_ids(site, token_b) == []
    problem(site.api("GET", f"/v2/nvcf/functions/{fid}/versions/{vid}", token_b), 404)
    fid_b, _ = create_function(site, token_b)
    assert function_ids(site, token_b) == [fid_b]
    assert function_ids(site, site.idp_c.mint(C_CLIENT, list(ADMIN_DEFAULT_SCOPES))) == []
    assert function_ids(site, admin_a) == [fid]

    # A client can only be bound to this gateway's issuer or a trusted one.
    body = {"name": "team-d", "adminClientId": "team-d-admin", "adminClientIssuer": "https://idp-x.example"}
    problem(site.api("POST", "/v2/nvcf/accounts/team-d", operator, json=body), 400)
    assert problem(site.api("GET", "/v2/nvcf/accounts/team-d", operator), 404)


def test_keys_never_exceed_their_creator(site: Site) -> None:
    operator = site.door_token([*ADMIN_DEFAULT_SCOPES, "account_setup"])
    admin_a = site.door_token()
    provision(site, operator, "team-b", B_CLIENT, ISSUER_B)
    before = key_ids(site, admin_a)

    # The default admin token lacks account_setup: no account_setup key (it raised limits before).
    refused = site.keys("POST", "/v1/keys", admin_a, json=key_body(scopes=["account_setup"]), headers=KEY_HEADERS)
    assert "'account_setup'" in problem(refused, 403)["detail"]
    assert key_ids(site, admin_a) == before

    # A list_functions-only token of B cannot mint write scopes; it can mint what it holds.
    lister = site.idp_b.mint(B_CLIENT, ["list_functions"])
    wide = key_body(scopes=["register_function", "deploy_function", "delete_function", "update_secrets"])
    problem(site.keys("POST", "/v1/keys", lister, json=wide, headers=KEY_HEADERS), 403)
    admin_b = site.idp_b.mint(B_CLIENT, list(ADMIN_DEFAULT_SCOPES))
    assert key_ids(site, admin_b) == []
    ok(site.keys("POST", "/v1/keys", lister, json=key_body(scopes=["list_functions"]), headers=KEY_HEADERS))
    assert len(key_ids(site, admin_b)) == 1

    # The documented flows: a function key and a task key from the default admin token.
    function_key = ok(site.keys("POST", "/v1/keys", admin_a, json=key_body(), headers=KEY_HEADERS))
    assert function_key["value"].startswith("nvapi-")
    task = key_body(scopes=list(TASK_KEY_DEFAULT_SCOPES), resources=[{"id": "*", "type": "account-tasks"}])
    task["audience_service_ids"] = [TASKS_ISSUER]
    task["authorizations"]["policies"][0].update(product=TASKS_PRODUCT, aud=TASKS_ISSUER, auds=[TASKS_ISSUER])
    task_headers = {**KEY_HEADERS, "Key-Issuer-Service": "nvct-api", "Key-Issuer-Id": TASKS_ISSUER}
    ok(site.keys("POST", "/v1/keys", admin_a, json=task, headers=task_headers))
    # …and without a bearer from loopback (the operator at the bootstrap door), as documented.
    ok(site.keys("POST", "/v1/keys", json=key_body(), headers=KEY_HEADERS))


def test_function_resources_bind_on_the_control_plane(site: Site) -> None:
    admin_a = site.door_token()
    fid_x, vid_x = create_function(site, admin_a)
    fid_y, vid_y = create_function(site, admin_a)
    ok(site.api("POST", f"/v2/nvcf/deployments/functions/{fid_y}/versions/{vid_y}", admin_a, json=deployment_body()))
    scopes = ["list_functions", "list_functions_details", "update_function", "deploy_function"]
    scopes += ["delete_function", "queue_details"]
    body = key_body(scopes=scopes, resources=[{"type": "function", "id": f"{fid_x}/*"}])
    key_x = ok(site.keys("POST", "/v1/keys", admin_a, json=body, headers=KEY_HEADERS))["value"]

    y = f"/v2/nvcf/functions/{fid_y}/versions/{vid_y}"
    deployment_y = f"/v2/nvcf/deployments/functions/{fid_y}/versions/{vid_y}"
    refused = [
        site.api("GET", y, key_x),
        site.api("PUT", y, key_x, json={"tags": ["taken"]}),
        site.api("GET", deployment_y, key_x),
        site.api("DELETE", deployment_y, key_x),
        site.api("GET", f"/v2/nvcf/queues/functions/{fid_y}", key_x),
        site.api("DELETE", y, key_x),
    ]
    for response in refused:
        assert problem(response, 403)["detail"] == "Missing resource entry in ApiKey for the function"
    # Y is untouched: still deployed, untagged, listed for the admin and hidden from the key.
    dto = ok(site.api("GET", y, admin_a))["function"]
    assert dto["status"] != "INACTIVE" and not dto.get("tags")
    assert function_ids(site, key_x) == [fid_x]
    assert ok(site.api("GET", f"/v2/nvcf/functions/{fid_x}/versions/{vid_x}", key_x))["function"]["id"] == fid_x
