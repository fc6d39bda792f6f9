"""``cfgate serve`` as a real process: first start, admin token over TCP, graceful SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.servers import find_free_port


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = find_free_port()
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base + "/health", proc)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_admin_token_over_tcp_and_graceful_sigterm(server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    base, proc = server
    # The Done-when curl: curl -X POST http://127.0.0.1:8080/v1/admin/keys -H 'Host: api-keys.localhost'
    response = httpx.post(base + "/v1/admin/keys", headers={"Host": "api-keys.localhost"})
    assert response.status_code == 200
    token = response.json()["value"]
    jwks = httpx.get(base + "/.well-known/jwks.json", headers={"Host": "api-keys.localhost"}).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], options={"verify_aud": False})
    assert "register_function" in claims["scopes"]
    assert (tmp_path / "data" / "cfgate.db").exists()
    # Keys live in the store, sealed by the master key the data directory got on first start.
    assert (tmp_path / "data" / "master-key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "data" / "signing-keys.json").exists()
    proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the captured SIGTERM once shutdown has completed.
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "Application shutdown complete" in output
    assert "/v1/admin/keys" in output  # first start explains how to mint a token
    assert token not in output  # no secret in the log


def test_processes_without_redis_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--processes", "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"requires --redis" in result.stderr
