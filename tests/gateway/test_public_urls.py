"""URLs the gateway hands out come from configuration, never from the request's Host (issue 12 item 8).

Against real ``cfgate serve`` processes: the large-result 302 ``Location``, an asset's
``uploadUrl`` / ``presignedUrl`` and ``jwks_uri`` are built from ``--public-url`` (or the default,
``http://<domain>:<port>``) whatever Host the client sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.public_urls import PublicUrls
from gateway.settings import Settings, SettingsError
from tests.e2e.driver import ScriptedWorker
from tests.support.serve_process import (
    ServeProcess,
    client,
    deployed_function,
    invoke_key,
    large_result,
    serve_process,
    wait_active,
)

HOSTILE = "attacker.example"


@pytest.fixture(params=["default", "configured"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServeProcess, PublicUrls]]:
    args = ["--public-url", "https://nvcf.example.test/"] if request.param == "configured" else []
    with serve_process(tmp_path, *args) as gateway:
        expected = (
            PublicUrls.parse("https://nvcf.example.test") if args else PublicUrls("http", "localhost", gateway.port, "")
        )
        yield gateway, expected


async def test_large_result_location_is_the_public_invocation_url(served: tuple[ServeProcess, PublicUrls]) -> None:
    gateway, expected = served
    token = gateway.admin_token()
    fid, vid = await deployed_function(gateway, token)
    payload = b"PK\x03\x04" + b"z" * 100

    worker = ScriptedWorker(gateway.grpc_target, token, fid, large_result(payload))
    await worker.start()
    try:
        await wait_active(gateway, token, fid, vid)
        key = await invoke_key(gateway, token)
        async with client(gateway, f"invocation.{HOSTILE}:666") as invocation:
            response = await invocation.post(
                f"/v2/nvcf/pexec/functions/{fid}", json={}, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 302, response.text
            location = response.headers["location"]
            assert location.startswith(expected.service("invocation") + "/v2/nvcf/pexec/results/")
            assert HOSTILE not in location
            url = httpx.URL(location)
            download = await invocation.get(url.raw_path.decode(), headers={"Host": expected.host_header("invocation")})
        assert download.status_code == 200 and download.content == payload
    finally:
        await worker.stop()


async def test_asset_urls_are_the_public_api_url(served: tuple[ServeProcess, PublicUrls]) -> None:
    gateway, expected = served
    key = await invoke_key(gateway, gateway.admin_token())
    auth = {"Authorization": f"Bearer {key}"}
    async with client(gateway, f"api.{HOSTILE}") as api:
        created = await api.post(
            "/v2/nvcf/assets", json={"contentType": "image/png", "description": "pic"}, headers=auth
        )
        assert created.status_code == 200, created.text
        asset = created.json()
        assert asset["uploadUrl"].startswith(f"{expected.service('api')}/v2/nvcf/assets/{asset['assetId']}/blob?")
        upload = httpx.URL(asset["uploadUrl"])
        sent = {"Content-Type": "image/png", "x-amz-meta-nvcf-asset-description": "pic"}
        put = await api.put(upload.raw_path.decode(), content=b"png", headers=sent)
        assert put.status_code == 200, put.text
        redirect = await api.get(f"/v2/nvcf/assets/{asset['assetId']}/content-redirect", headers=auth)
        assert redirect.json()["presignedUrl"].startswith(f"{expected.service('api')}/v2/nvcf/assets/")


async def test_jwks_uri_is_the_public_api_keys_url(served: tuple[ServeProcess, PublicUrls]) -> None:
    gateway, expected = served
    async with client(gateway, f"api-keys.{HOSTILE}") as keys:
        discovery = await keys.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200
    assert discovery.json()["jwks_uri"] == f"{expected.service('api-keys')}/.well-known/jwks.json"


def test_service_urls() -> None:
    configured = PublicUrls.parse("https://NVCF.example.com:443/gw/")
    assert configured.service("invocation") == "https://invocation.nvcf.example.com/gw"
    assert PublicUrls.parse("http://10.0.0.5:8080").service("api") == "http://api.10.0.0.5:8080"
    assert PublicUrls.configured(None, "localhost", 8080).service("api-keys") == "http://api-keys.localhost:8080"
    assert PublicUrls.configured(None, "localhost", 8080).host_header("invocation") == "invocation.localhost"


@pytest.mark.parametrize(
    "url",
    ["ftp://nvcf.example.com", "nvcf.example.com", "https://", "https://[::1]:8080", "https://h/?q=1", "https://u:p@h"],
)
def test_unusable_public_urls_are_refused(url: str) -> None:
    with pytest.raises(SettingsError):
        Settings.load({"public_url": url}, env={})


def test_public_url_reads_its_environment_variable() -> None:
    settings = Settings.load(env={"CFGATE_PUBLIC_URL": "https://nvcf.example.com"})
    assert settings.public_urls.service("api") == "https://api.nvcf.example.com"
