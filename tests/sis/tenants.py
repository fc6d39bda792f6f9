"""Several accounts on one real gateway: the operator's default account and accounts admitted
through a trusted issuer that the test serves itself (its own ES256 key, its JWKS on loopback).

``tenant_gateway`` is a real gateway (uvicorn on a loopback socket, grpc.aio on its own port)
trusting ``TrustedIssuer``. Accounts are made the documented way: ``POST /v2/nvcf/accounts/{ncaId}``
with an ``account_setup`` token of the operator, naming the admin client and its issuer.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from gateway.server import uvicorn_config
from protos.cfgate.worker.v1 import worker_pb2 as pb
from protos.cfgate.worker.v1 import worker_pb2_grpc
from tests.conftest import make_settings
from tests.control.helpers import deployment_body, function_body
from tests.e2e.conftest import LiveGateway
from tests.gateway.helpers import KEY_HEADERS, TASKS_ISSUER, key_body
from tests.servers import find_free_port
from tests.sis.helpers import DEFAULT_NCA, bearer, cluster_body
from tests.tasks.conftest import task_key_body

ISSUER = "https://idp.tenants.example"


class TrustedIssuer:
    """An identity provider: an ES256 key whose JWKS is served over real HTTP on loopback."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid="tenants-1", alg="ES256", use="sig")
        body = json.dumps({"keys": [jwk]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    def mint(self, subject: str, scopes: Sequence[str] = ADMIN_DEFAULT_SCOPES) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": subject, "scopes": list(scopes), "iat": now, "nbf": now, "exp": now + 3600}
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": "tenants-1"})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def trusted_issuer() -> Iterator[TrustedIssuer]:
    issuer = TrustedIssuer()
    try:
        yield issuer
    finally:
        issuer.close()


@pytest.fixture
async def tenant_gateway(tmp_path: Path, trusted_issuer: TrustedIssuer) -> AsyncIterator[LiveGateway]:
    port = find_free_port()
    settings = make_settings(
        tmp_path,
        database=f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}",
        port=port,
        worker_port=find_free_port(),
        trusted_issuers=(f"{ISSUER}={trusted_issuer.jwks_url}",),
        task_tick_ms=60_000,  # tests run scheduling passes themselves (``Tenants.schedule``)
    )
    config = uvicorn_config(settings)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    gateway = config.app
    assert isinstance(gateway, Gateway)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, headers={"Host": "api-keys.localhost"}) as keys:
        token = (await keys.post("/v1/admin/keys")).json()["value"]
    try:
        yield LiveGateway(gateway, base, f"127.0.0.1:{gateway.worker_port}", token)
    finally:
        server.should_exit = True
        await task


class Tenants:
    """Accounts, clusters, functions and tasks on a ``tenant_gateway``, made over HTTP."""

    def __init__(self, live: LiveGateway, issuer: TrustedIssuer) -> None:
        self.live, self.issuer = live, issuer
        self.operator = live.admin_token  # the default account's bootstrap admin

    async def account(self, nca_id: str, client_id: str) -> str:
        """Admit an account whose admin client is a subject of the trusted issuer; its admin JWT."""
        setup = self.live.gateway.runtime.issuer.mint(self.live.gateway.settings.admin_client_id, ["account_setup"])
        body = {"name": nca_id, "adminClientId": client_id, "adminClientIssuer": ISSUER}
        async with self.live.client("api.localhost") as api:
            response = await api.post(f"/v2/nvcf/accounts/{nca_id}", json=body, headers=bearer(setup.value))
        assert response.status_code == 200, response.text
        return self.issuer.mint(client_id)

    async def cluster(self, token: str, nca_id: str, name: str, **fields: Any) -> dict[str, Any]:
        async with self.live.client("sis.localhost") as sis:
            body = cluster_body(nca_id, clusterName=name, **fields)
            response = await sis.post(f"/v1/accounts/{nca_id}/clusters", json=body, headers=bearer(token))
        assert response.status_code == 200, response.text
        registered: dict[str, Any] = response.json()
        return registered

    async def delete_cluster(self, token: str, cluster: dict[str, Any]) -> None:
        async with self.live.client("sis.localhost") as sis:
            url = f"/v1/accounts/{cluster['ncaId']}/clusters/{cluster['clusterId']}"
            assert (await sis.delete(url, headers=bearer(token))).status_code == 200

    async def function(self, token: str, **placement: Any) -> tuple[str, str]:
        """A function deployed on H100 / NCP.GPU.H100_1x with ``placement`` (clusters, backend)."""
        async with self.live.client("api.localhost") as api:
            created = await api.post("/v2/nvcf/functions", json=function_body(), headers=bearer(token))
            assert created.status_code == 200, created.text
            dto = created.json()["function"]
            url = f"/v2/nvcf/deployments/functions/{dto['id']}/versions/{dto['versionId']}"
            deployed = await api.post(url, json=deployment_body(**placement), headers=bearer(token))
            assert deployed.status_code == 200, deployed.text
        return str(dto["id"]), str(dto["versionId"])

    async def api_key(
        self, token: str, scopes: Sequence[str] = ("deploy_function", "invoke_function")
    ) -> dict[str, Any]:
        async with self.live.client("api-keys.localhost") as keys:
            headers = {**KEY_HEADERS, **bearer(token)}
            response = await keys.post("/v1/keys", json=key_body(scopes=list(scopes)), headers=headers)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()
        return created

    async def delete_key(self, token: str, key: dict[str, Any]) -> None:
        async with self.live.client("api-keys.localhost") as keys:
            headers = {**KEY_HEADERS, **bearer(token)}
            response = await keys.delete(f"/v1/keys/{key['id']}", headers=headers)
        assert response.status_code in (200, 204), response.text

    async def task(self, token: str, secret: str = "s3cret", **placement: Any) -> str:
        """A queued task of the token's account on H100 / NCP.GPU.H100_1x, carrying one secret."""
        task_key = await self._task_key(token)
        body = {
            "name": "isolation-task",
            "gpuSpecification": {"gpu": "H100", "instanceType": "NCP.GPU.H100_1x", **placement},
            "containerImage": "nvcr.io/example/trainer:1.0",
            "resultHandlingStrategy": "NONE",
            "secrets": [{"name": "HF_TOKEN", "value": secret}],
        }
        async with self.live.client("tasks.localhost") as tasks:
            response = await tasks.post("/v1/nvct/tasks", json=body, headers=bearer(task_key))
        assert response.status_code == 200, response.text
        return str(response.json()["task"]["id"])

    async def _task_key(self, token: str) -> str:
        headers = {**KEY_HEADERS, "Key-Issuer-Id": TASKS_ISSUER, "Key-Issuer-Service": "nvct-api", **bearer(token)}
        async with self.live.client("api-keys.localhost") as keys:
            response = await keys.post("/v1/keys", json=task_key_body(), headers=headers)
        assert response.status_code == 200, response.text
        return str(response.json()["value"])

    async def schedule(self) -> None:
        """One scheduling pass, run to its end: every assignable task is assigned when it returns."""
        tasks = self.live.gateway.tasks
        assert tasks is not None
        await tasks.scheduler.pass_once()

    async def register(self, credential: str, function_id: str, **fields: Any) -> grpc.StatusCode:
        """A real gRPC ``Register``; the status it ends with."""
        async with grpc.aio.insecure_channel(self.live.grpc_target) as channel:
            stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
            try:
                await stub.Register(pb.RegisterRequest(credential=credential, function_id=function_id, **fields))
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK


@pytest.fixture
def tenants(tenant_gateway: LiveGateway, trusted_issuer: TrustedIssuer) -> Tenants:
    return Tenants(tenant_gateway, trusted_issuer)


__all__ = ["DEFAULT_NCA", "Tenants", "TrustedIssuer", "tenant_gateway", "tenants", "trusted_issuer"]
