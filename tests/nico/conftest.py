"""A real ``cfgate serve`` process serving NICo embedded, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import find_free_port

HOST = "nico.localhost"
REPO = Path(__file__).resolve().parents[2]
# The official NICo OpenAPI document: shared/ beside the checkout (../shared in CI) or $NICO_OPENAPI.
OFFICIAL_SPEC = Path(os.environ.get("NICO_OPENAPI") or REPO.parent / "shared" / "reference" / "nico-openapi.yaml")
PREFIX = "/v2/org/{org}/nico"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"server exited early with {proc.returncode}: {out[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    http: httpx.Client

    def token(self, org: str, roles: list[str] | None = None, *, service_account: bool = False, sub: str = "") -> str:
        body: dict[str, Any] = {"org": org, "roles": roles or [], "serviceAccount": service_account}
        if sub:
            body["sub"] = sub
        response = self.http.post("/v1/admin/keys", json=body)
        assert response.status_code == 200, response.text
        value: str = response.json()["value"]
        return value

    def client(self, org: str, token: str) -> NicoClient:
        return NicoClient(self.http, org, token)


class NicoClient:
    """Calls below /v2/org/{org}/nico with one bearer."""

    def __init__(self, http: httpx.Client, org: str, token: str) -> None:
        self.http = http
        self.org = org
        self.headers = {"Authorization": f"Bearer {token}"}

    def url(self, path: str) -> str:
        return PREFIX.format(org=self.org) + path

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.http.request(method, self.url(path), json=body, params=params or None, headers=self.headers)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params: Any) -> Any:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def wait_for(self, path: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = self.ok("GET", path)
            if body["status"] == status:
                return body
            assert time.monotonic() < deadline, f"{path} stayed {body['status']}, wanted {status}"
            time.sleep(0.05)

    def wait_gone(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.call("GET", path).status_code != 404:
            assert time.monotonic() < deadline, f"{path} was not removed"
            time.sleep(0.05)


ServeFactory = Callable[..., Served]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'cfgate.db'}"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
def serve(tmp_path: Path, store_url: str) -> Iterator[ServeFactory]:
    started: list[Served] = []
    # Processes of one test are one installation: they share the store, so the master key too.
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()

    def start(*extra: str, env: dict[str, str] | None = None, name: str = "a") -> Served:
        port = find_free_port()
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--port",
            str(port),
            "--grpc-port",
            "0",
            "--worker-port",
            "0",
            "--data-dir",
            str(tmp_path / f"data-{name}"),
            "--database",
            store_url,
            *extra,
        ]
        # No settings leak in from the caller's environment; the pure-Python-twin switch does.
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("CFGATE_") or k == "CFGATE_NO_EXTENSIONS"
        }
        environment.update({"CFGATE_NICO_STEP_MS": "20", "CFGATE_MASTER_KEY": master_key, **(env or {})})
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment)
        base = f"http://127.0.0.1:{port}"
        served = Served(base, proc, httpx.Client(base_url=base, headers={"Host": HOST}, timeout=30))
        started.append(served)
        wait_healthy(base + "/health", proc)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.http.close()
            if served.proc.poll() is None:
                served.proc.terminate()
                try:
                    served.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    served.proc.kill()
                    served.proc.wait()
            if served.proc.stdout:
                served.proc.stdout.close()


@pytest.fixture
def nico(serve: ServeFactory) -> Served:
    return serve()
