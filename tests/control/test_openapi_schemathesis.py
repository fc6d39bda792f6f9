"""``/v3/openapi`` against the running control plane: every operation, fuzzed by schemathesis.

A real gateway serves on a loopback port (uvicorn in a background thread, so schemathesis's
blocking ``requests`` calls cannot stall its event loop; in-process ASGI would run it on
schemathesis's own loop and restart its lifespan after each test). The document is loaded from
``/v3/openapi`` with ``Host: api.localhost``, and every call carries that host and an admin JWT of
the default account holding every scope. The operations come from ``control_plane_endpoints()``
(test ids ``<METHOD> <path>``); each gets ``MAX_EXAMPLES`` derandomized Hypothesis examples
(phases explicit and generate: no shrinking) drawn from schemathesis's positive and negative
strategies, plus — for operations with path parameters — positive cases aimed at real resources
made for that operation alone (a deployed, shared function; a telemetry; a registry credential; an
uploaded asset; an account and its client), since random ids only reach 404s. Each answer must
pass:

* ``not_a_server_error`` — no 5xx;
* ``status_code_conformance`` — the status is documented (each operation documents its success
  status and ``default`` problem responses);
* ``content_type_conformance`` and ``response_schema_conformance`` — content type and body match
  the document.

Both store backends run: PostgreSQL refuses strings SQLite takes (a NUL character in text).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api import Endpoint
from gateway.app import Gateway
from gateway.services.functions.app import control_plane_endpoints
from tests.control.helpers import deployment_body, function_body
from tests.control.matrix_cases import ALL_JWT_SCOPES, ASSET_BODY, registry_body, telemetry_body
from tests.support.threaded_gateway import threaded_gateway

ENDPOINTS = control_plane_endpoints()
MAX_EXAMPLES = 15
API_HOST = "api.localhost"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The bearer is ours; generated Authorization headers would only ever reach the 401 path.
CONFIG = {"generation": {"with-security-parameters": False}}
PARTNER = "fuzz-partner"


@dataclass
class Live:
    """The running gateway: its base URL, the headers of every call, the real ids of each operation."""

    gateway: Gateway
    base: str
    headers: dict[str, str]
    http: httpx.Client
    targets: dict[str, dict[str, str]] = field(default_factory=dict)

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, url: str, body: Any) -> dict[str, Any]:
        return self.ok(self.http.post(url, json=body))

    def resources_for(self, label: str, names: list[str]) -> dict[str, str]:
        """Real resources for one operation's path parameters, made on its first example."""
        if label not in self.targets:
            self.targets[label] = self._make(set(names))
        return self.targets[label]

    def _make(self, names: set[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        suffix = uuid.uuid4().hex[:10]
        if names & {"functionId", "functionVersionId", "versionId", "deploymentId", "gpuSpecId"}:
            function = self.post("/v2/nvcf/functions", function_body())["function"]
            fid, vid = function["id"], function["versionId"]
            deployment = self.post(f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", deployment_body())
            parties = {"authorizedParties": [{"ncaId": PARTNER}]}
            self.post(f"/v2/nvcf/authorizations/functions/{fid}", parties)
            self.post(f"/v2/nvcf/authorizations/functions/{fid}/versions/{vid}", parties)
            spec = deployment["deployment"]["deploymentSpecifications"][0]
            ids.update(
                functionId=fid,
                functionVersionId=vid,
                versionId=vid,
                deploymentId=deployment["deployment"]["deploymentId"],
                gpuSpecId=spec["gpuSpecificationId"],
            )
        if "telemetryId" in names:
            ids["telemetryId"] = self.post("/v2/nvcf/telemetries", telemetry_body(f"tel-{suffix}"))["telemetry"][
                "telemetryId"
            ]
        if "registryCredentialId" in names:
            created = self.post("/v2/nvcf/registry-credentials", registry_body(f"reg-{suffix}"))
            ids["registryCredentialId"] = created["registryCredential"]["registryCredentialId"]
        if "assetId" in names:
            created = self.post("/v2/nvcf/assets", ASSET_BODY)
            upload = {
                "Host": API_HOST,
                "Content-Type": ASSET_BODY["contentType"],
                "x-amz-meta-nvcf-asset-description": ASSET_BODY["description"],
            }
            url = urlsplit(created["uploadUrl"])
            path = f"{url.path}?{url.query}"
            response = httpx.put(f"{self.base}{path}", content=b"fuzz", headers=upload)
            assert response.status_code == 200, response.text
            ids["assetId"] = created["assetId"]
        if names & {"ncaId", "clientId"}:
            nca_id = f"fuzz-{suffix}"
            self.post(f"/v2/nvcf/accounts/{nca_id}", {"name": "Fuzzed", "adminClientId": f"{nca_id}-client"})
            ids.update(ncaId=nca_id, clientId=f"{nca_id}-client")
        return ids


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzz_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz-store') / 'cfgate.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    dsn: str = server.create_database(name)
    try:
        yield dsn
    finally:
        if server.is_running():
            server.drop_database(name)


@pytest.fixture(scope="module")
def live(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with threaded_gateway(tmp_path_factory.mktemp("fuzz"), fuzz_database, "schemathesis-gateway") as (gateway, base):
        token = gateway.runtime.issuer.mint(gateway.settings.admin_client_id, ALL_JWT_SCOPES).value
        headers = {"Host": API_HOST, "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as http:
            live = Live(gateway, base, headers, http)
            live.post(f"/v2/nvcf/accounts/{PARTNER}", {"name": "Partner", "adminClientId": f"{PARTNER}-client"})
            yield live


@pytest.fixture(scope="module")
def api_schema(live: Live) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{live.base}/v3/openapi",
        headers={"Host": API_HOST},
        config=SchemathesisConfig.from_dict(CONFIG),
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e.method} {e.path}" for e in ENDPOINTS])
def test_openapi_conformance(endpoint: Endpoint, api_schema: BaseSchema, live: Live) -> None:
    operation = api_schema[endpoint.path][endpoint.method]
    real = live.resources_for(f"{endpoint.method} {endpoint.path}", endpoint.path_params)
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    if real:
        wanted = {name: real[name] for name in endpoint.path_params if name in real}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=wanted))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case[Any]) -> None:
        case.call_and_validate(headers=live.headers, checks=CHECKS)

    run()


def test_nul_characters_are_refused_not_stored(live: Live) -> None:
    """Found by this fuzzing on PostgreSQL (text cannot hold NUL): such ids are 400/404, never a 500."""
    created = live.post("/v2/nvcf/functions", function_body())["function"]
    url = f"/v2/nvcf/authorizations/functions/{created['id']}"
    for party in ({"ncaId": "fuzz\x00"}, {"ncaId": PARTNER, "clientId": "client\x00"}):
        response = live.http.post(url, json={"authorizedParties": [party]})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
    response = live.http.get("/v2/nvcf/clients/client%00")
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "Client 'client\x00' not found"
