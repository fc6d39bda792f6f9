"""The sis host's ``/v3/openapi`` against a running gateway: every SIS operation, fuzzed by schemathesis.

Same harness as ``tests/control/test_openapi_schemathesis.py`` (``tests.support.threaded_gateway``, both store
backends, the checks ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``), on ``Host: sis.localhost`` with
the default admin JWT. Operations with ``{ncaId}`` / ``{clusterId}`` also get positive cases aimed
at the default account and a real cluster made for that operation, since random ones only reach 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.config import SchemathesisConfig

from gateway.api import Endpoint
from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from gateway.services.clusters.clusters import ENDPOINTS
from tests.control.test_openapi_schemathesis import CHECKS, CONFIG, MAX_EXAMPLES, fuzz_database  # noqa: F401
from tests.sis.helpers import DEFAULT_NCA, cluster_body
from tests.support.threaded_gateway import threaded_gateway

SIS_HOST = "sis.localhost"


@dataclass
class Live:
    gateway: Gateway
    base: str
    headers: dict[str, str]
    http: httpx.Client
    targets: dict[str, dict[str, str]] = field(default_factory=dict)

    def resources_for(self, label: str, names: list[str]) -> dict[str, str]:
        if label not in self.targets:
            ids = {"ncaId": DEFAULT_NCA}
            if "clusterId" in names:
                body = cluster_body(clusterName=f"fuzz-{len(self.targets)}")
                response = self.http.post(f"/v1/accounts/{DEFAULT_NCA}/clusters", json=body)
                assert response.status_code == 200, response.text
                ids["clusterId"] = response.json()["clusterId"]
            self.targets[label] = ids
        return self.targets[label]


@pytest.fixture(scope="module")
def live(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:  # noqa: F811
    with threaded_gateway(tmp_path_factory.mktemp("sis-fuzz"), fuzz_database, "schemathesis-sis") as (gateway, base):
        token = gateway.runtime.issuer.mint(gateway.settings.admin_client_id, ADMIN_DEFAULT_SCOPES).value
        headers = {"Host": SIS_HOST, "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as http:
            yield Live(gateway, base, headers, http)


@pytest.fixture(scope="module")
def sis_schema(live: Live) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{live.base}/v3/openapi", headers={"Host": SIS_HOST}, config=SchemathesisConfig.from_dict(CONFIG)
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e.method} {e.path}" for e in ENDPOINTS])
def test_openapi_conformance(endpoint: Endpoint, sis_schema: BaseSchema, live: Live) -> None:
    operation = sis_schema[endpoint.path][endpoint.method]
    real = live.resources_for(f"{endpoint.method} {endpoint.path}", endpoint.path_params)
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
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
