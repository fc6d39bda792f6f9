"""Authorization matrices of the api host's aliases: the operator mirrors
(``/v2/nvcf/accounts/{ncaId}/secrets|queues/…``, ``operator_endpoints()``) and NGC's org paths
(``/v2/orgs/{org}[/teams/{team}]/…``, ``ngc_endpoints()``).

Mirrors: every endpoint × credential × account (the target account, one that does not exist) has
one expected answer: 401 without a usable bearer; 403 for every credential without the endpoint's
``admin:<scope>`` (default admin JWT, operator JWT, another account's operator JWT, a JWT holding
another ``admin:`` scope, any API key: mirrors are JWT-only); for ``admin:<scope>`` (whichever
account minted it) the success status on the target account and 404 on an unknown one. A refused
call leaves the target's secrets unchanged.

Org paths run the same handlers as ``/v2/nvcf/…`` (whose matrix is test_authorization_matrix.py),
after one more rule: the org is the caller's account. Every alias answers 401 without a bearer and
404 for an org that is another account's or nobody's, whatever the credential may do there.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from gateway.api import Endpoint
from gateway.app import Gateway
from gateway.auth.scopes import ALL_SCOPES, TASK_KEY_DEFAULT_SCOPES
from gateway.services.functions.app import ngc_endpoints, operator_endpoints
from tests.control.conftest import OPERATOR_SCOPES, OTHER_CLIENT_ID, OTHER_NCA_ID, Minter
from tests.control.helpers import create_function, deployment_body
from tests.control.matrix_cases import SPECS, World, telemetry_body
from tests.gateway.helpers import assert_problem, create_key, key_body
from tests.tasks.test_authorization import CASES as TASK_CASES

MIRRORS = operator_endpoints()
CREDENTIALS = (
    "no bearer",
    "garbage bearer",
    "admin JWT",
    "operator JWT",
    "other account operator JWT",
    "JWT with another admin scope",
    "function API key",
    "API key with the plain scope",
    "admin scope JWT",
    "admin scope JWT of another account",
)
ACCOUNTS = ("target", "unknown")
SECRET = {"secrets": [{"name": "API_TOKEN", "value": "mirror-set"}]}


def expected(credential: str, account: str, endpoint: Endpoint) -> int:
    if credential in ("no bearer", "garbage bearer"):
        return 401
    if not credential.startswith("admin scope JWT"):
        return 403
    if account == "unknown":
        return 404
    if endpoint.path.endswith("/position"):
        return 404  # no such request in the target's queues: the lookup ran for that account
    return endpoint.status


async def bearer_for(
    credential: str, endpoint: Endpoint, gateway: Gateway, mint: Minter, keys: httpx.AsyncClient
) -> dict[str, str]:
    default_client = gateway.settings.admin_client_id
    admin_scopes = endpoint.scopes
    plain = tuple(s.removeprefix("admin:") for s in admin_scopes)
    other_admin = "admin:list_tasks" if "admin:list_tasks" not in admin_scopes else "admin:queue_details"
    token: str | None
    match credential:
        case "no bearer":
            return {}
        case "garbage bearer":
            token = "not-a-token"
        case "admin JWT":
            token = mint(default_client, ALL_SCOPES)
        case "operator JWT":
            token = mint(default_client, OPERATOR_SCOPES)
        case "other account operator JWT":
            token = mint(OTHER_CLIENT_ID, (*OPERATOR_SCOPES, *plain))
        case "JWT with another admin scope":
            token = mint(default_client, (*ALL_SCOPES, other_admin))
        case "function API key":
            token = (await create_key(keys, mint(default_client, ALL_SCOPES)))["value"]
        case "API key with the plain scope":
            body = key_body(scopes=list(plain))
            token = (await create_key(keys, mint(default_client, ALL_SCOPES), body))["value"]
        case "admin scope JWT":
            token = mint(default_client, admin_scopes)
        case "admin scope JWT of another account":
            token = mint(OTHER_CLIENT_ID, admin_scopes)
        case _:
            raise AssertionError(credential)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("account", ACCOUNTS)
@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("endpoint", MIRRORS, ids=[f"{e.method} {e.path}" for e in MIRRORS])
async def test_mirror_matrix(
    api: httpx.AsyncClient,
    keys_client: httpx.AsyncClient,
    gateway: Gateway,
    mint: Minter,
    other_admin: dict[str, str],
    endpoint: Endpoint,
    credential: str,
    account: str,
) -> None:
    function = await create_function(api, other_admin)
    fid, vid = function["id"], function["versionId"]
    if "/queues/" in endpoint.path:
        deploy = f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}"
        deployed = await api.post(deploy, json=deployment_body(minInstances=0), headers=other_admin)
        assert deployed.status_code == 200, deployed.text
    telemetry = await api.post("/v2/nvcf/telemetries", json=telemetry_body("mirror"), headers=other_admin)
    assert telemetry.status_code == 200, telemetry.text
    nca_id = OTHER_NCA_ID if account == "target" else f"nobody-{uuid.uuid4().hex[:8]}"
    values = {
        "ncaId": nca_id,
        "functionId": fid,
        "versionId": vid,
        "telemetryId": telemetry.json()["telemetry"]["telemetryId"],
        "requestId": str(uuid.uuid4()),
    }
    url = endpoint.path.format(**{name: values[name] for name in endpoint.path_params})
    body: Any = None
    if endpoint.method == "PUT":
        body = SECRET if "/functions/" in endpoint.path else {"secret": {"name": "otel", "value": "v1"}}
    headers = await bearer_for(credential, endpoint, gateway, mint, keys_client)
    response = await api.request(endpoint.method, url, json=body, headers=headers)
    status = expected(credential, account, endpoint)
    if status >= 400:
        assert_problem(response, status)
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
    else:
        assert response.status_code == status, response.text
    version = await gateway.runtime.catalog.functions.get(fid, vid)
    assert version is not None
    wrote_secret = status == 204 and "/functions/" in endpoint.path
    assert list(version.secret_names) == (["API_TOKEN"] if wrote_secret else [])


ORG_ALIASES = ngc_endpoints()[1:]


def _alias_url(endpoint: Endpoint, org: str) -> str:
    values = {name: str(uuid.uuid4()) for name in endpoint.path_params}
    values.update(org=org, team="any-team", ncaId="some-account")
    return endpoint.path.format(**values)


def _alias_body(endpoint: Endpoint) -> Any:
    if endpoint.body is None:
        return None
    unaliased = endpoint.path.split("/nvcf", 1)[1]
    spec = SPECS.get(f"{endpoint.method} /v2/nvcf{unaliased}")
    ids = ("function_id", "version_id", "deployment_id", "gpu_spec_id", "request_id", "telemetry_id", "asset_id")
    world = World(suffix="alias", extra_client="alias-client", **{name: str(uuid.uuid4()) for name in ids})
    return spec.body(world) if spec is not None and spec.body is not None else {}


@pytest.mark.parametrize("endpoint", ORG_ALIASES, ids=[f"{e.method} {e.path}" for e in ORG_ALIASES])
async def test_an_org_path_is_the_callers_account_only(
    api: httpx.AsyncClient, gateway: Gateway, mint: Minter, other_admin: dict[str, str], endpoint: Endpoint
) -> None:
    every_scope = {"Authorization": f"Bearer {mint(gateway.settings.admin_client_id, ALL_SCOPES)}"}
    body = _alias_body(endpoint)
    if endpoint.scopes:
        response = await api.request(endpoint.method, _alias_url(endpoint, "nvcf-default"), json=body)
        assert_problem(response, 401)
    for org in (OTHER_NCA_ID, "nobody"):
        response = await api.request(endpoint.method, _alias_url(endpoint, org), json=body, headers=every_scope)
        assert_problem(response, 404)
        assert "Organization" in response.json()["detail"]


TASK_ALIASES = [(c.method, "/v2/orgs/{org}/nvct" + c.path.removeprefix("/v1/nvct"), c.body) for c in TASK_CASES]


@pytest.mark.parametrize(("method", "path", "body"), TASK_ALIASES, ids=[f"{m} {p}" for m, p, _ in TASK_ALIASES])
async def test_an_nvct_org_path_is_the_callers_account_only(
    api: httpx.AsyncClient, gateway: Gateway, mint: Minter, other_admin: dict[str, str], method: str, path: str,
    body: Any,
) -> None:  # fmt: skip
    """NVCT's ``/v2/orgs/{org}/nvct/…`` on the api host: the caller's org answers as on the tasks
    host (a fresh task id: 404 from the handler, 200 for the listings), any other org is 404."""
    tasks = {"Authorization": f"Bearer {mint(gateway.settings.admin_client_id, TASK_KEY_DEFAULT_SCOPES)}"}
    task_id = str(uuid.uuid4())
    filled = json.loads(json.dumps(body).replace("{id}", task_id)) if body is not None else None

    def url(org: str) -> str:
        return path.replace("{org}", org).replace("{id}", task_id)

    assert_problem(await api.request(method, url("nvcf-default"), json=filled), 401)
    for org in (OTHER_NCA_ID, "nobody"):
        refused = await api.request(method, url(org), json=filled, headers=tasks)
        assert "Organization" in assert_problem(refused, 404)["detail"]
    own = await api.request(method, url("nvcf-default"), json=filled, headers=tasks)
    if "{id}" in path:
        assert_problem(own, 404)
    else:
        assert own.status_code == 200, own.text
