"""The sis host's ``/v3/openapi`` against a running gateway: every SIS operation, fuzzed by schemathesis.

Same harness as ``tests/control/test_openapi_schemathesis.py`` (uvicorn in a thread, both store
backends, the checks ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``), on ``Host: sis.localhost`` with
the default admin JWT. Operations with ``{ncaId}`` / ``{clusterId}`` also get positive cases aimed
at the default account and a real cluster made for that operation, since random ones only reach 404.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.config import SchemathesisConfig

from gateway.api import Endpoint
from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from gateway.server import uvicorn_config
from gateway.services.clusters.clusters import ENDPOINTS
from tests.conftest import make_settings
from tests.control.test_openapi_schemathesis import CHECKS, CONFIG, MAX_EXAMPLES, _serve, fuzz_database  # noqa: F401
from tests.sis.helpers import DEFAULT_NCA, cluster_body

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
    tmp: Path = tmp_path_factory.mktemp("sis-fuzz")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn_config(make_settings(tmp, database=fuzz_database, port=port))
    config.log_level = "warning"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=_serve, args=(server, sock), name="schemathesis-sis", daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the gateway did not start"
            thread.join(0.02)
        gateway = config.app
        assert isinstance(gateway, Gateway)
        token = gateway.runtime.issuer.mint(gateway.settings.admin_client_id, ADMIN_DEFAULT_SCOPES).value
        headers = {"Host": SIS_HOST, "Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as http:
            yield Live(gateway, base, headers, http)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


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
