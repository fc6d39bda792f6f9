"""``/v2/nvcf/assets…`` and the pre-signed blob URLs cfgate serves itself: contract and round trips."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.assets import AssetNotFound
from gateway.store.schema import assets
from tests.conftest import ClientFactory
from tests.control.conftest import OTHER_CLIENT_ID, Minter
from tests.gateway.helpers import admin_token, assert_problem, create_key

DESCRIPTION_HEADER = "x-amz-meta-nvcf-asset-description"
PAYLOAD = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
async def invoker(keys_client: httpx.AsyncClient) -> dict[str, str]:
    """A function API key of the default account (its default scopes include invoke_function)."""
    key = await create_key(keys_client, await admin_token(keys_client))
    return {"Authorization": f"Bearer {key['value']}"}


@pytest.fixture
async def other_invoker(other_admin: dict[str, str], mint: Minter) -> dict[str, str]:
    """A JWT with invoke_function of the second account."""
    return {"Authorization": f"Bearer {mint(OTHER_CLIENT_ID, ['invoke_function'])}"}


async def asset_rows(gateway: Gateway) -> int:
    async with gateway.runtime.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(assets))).scalar_one())


def stored_files(gateway: Gateway) -> list[Path]:
    root = gateway.settings.asset_path
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def create_asset(
    api: httpx.AsyncClient, headers: dict[str, str], content_type: str = "image/png", description: str = "cat picture"
) -> dict[str, Any]:
    response = await api.post(
        "/v2/nvcf/assets", json={"contentType": content_type, "description": description}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def upload(
    api: httpx.AsyncClient, created: dict[str, Any], content: bytes = PAYLOAD, **headers: str
) -> httpx.Response:
    sent = {"Content-Type": created["contentType"], DESCRIPTION_HEADER: created["description"]}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return await api.put(created["uploadUrl"], content=content, headers=sent)


async def uploaded_asset(api: httpx.AsyncClient, headers: dict[str, str], content: bytes = PAYLOAD) -> dict[str, Any]:
    created = await create_asset(api, headers)
    response = await upload(api, created, content)
    assert response.status_code == 200, response.text
    return created


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


# --- create ----------------------------------------------------------------------------------------


async def test_create_asset_returns_upload_url(api: httpx.AsyncClient, invoker: dict[str, str]) -> None:
    response = await api.post(
        "/v2/nvcf/assets", json={"contentType": "image/png", "description": "cat picture"}, headers=invoker
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"assetId", "uploadUrl", "contentType", "description"}
    asset_id = body["assetId"]
    assert str(uuid.UUID(asset_id)) == asset_id
    assert (body["contentType"], body["description"]) == ("image/png", "cat picture")
    url = urlsplit(body["uploadUrl"])
    # The default public URL: http://<domain>:<port> with the api label in front.
    assert (url.scheme, url.netloc, url.path) == ("http", "api.localhost:8080", f"/v2/nvcf/assets/{asset_id}/blob")
    assert set(parse_qs(url.query)) == {"expires", "signature"}
    expires = int(parse_qs(url.query)["expires"][0])
    assert 35 * 60 - 60 <= expires - time.time() <= 35 * 60


async def test_urls_never_follow_the_callers_host(client_factory: ClientFactory, invoker: dict[str, str]) -> None:
    hostile = client_factory("api.attacker.example")
    hostile.base_url = httpx.URL("https://api.attacker.example:8443")
    created = await create_asset(hostile, invoker)
    assert created["uploadUrl"].startswith(f"http://api.localhost:8080/v2/nvcf/assets/{created['assetId']}/blob?")
    assert (await upload(client_factory("api.localhost"), created)).status_code == 200
    redirect = await hostile.get(f"/v2/nvcf/assets/{created['assetId']}/content-redirect", headers=invoker)
    assert redirect.json()["presignedUrl"].startswith("http://api.localhost:8080/")


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://nvcf.example.com/"}])
async def test_urls_come_from_the_public_url(client_factory: ClientFactory, invoker: dict[str, str]) -> None:
    api = client_factory("api.localhost")
    created = await create_asset(api, invoker)
    assert created["uploadUrl"].startswith(f"https://api.nvcf.example.com/v2/nvcf/assets/{created['assetId']}/blob?")
    assert (await upload(api, created)).status_code == 200
    redirect = await api.get(f"/v2/nvcf/assets/{created['assetId']}/content-redirect", headers=invoker)
    assert redirect.json()["presignedUrl"].startswith("https://api.nvcf.example.com/v2/nvcf/assets/")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"contentType": "image/png"},
        {"description": "no type"},
        {"contentType": "png", "description": "x"},
        {"contentType": "image/png ", "description": "x"},
        {"contentType": "image/png", "description": ""},
        {"contentType": "image/png", "description": "   "},
        {"contentType": "image/png", "description": "caf\u00e9"},
        {"contentType": "image/png", "description": "line\nbreak"},
        {"contentType": "image/png", "description": "x" * 1025},
        {"contentType": 5, "description": "x"},
        ["image/png"],
    ],
)
async def test_bad_create_bodies_are_400_and_write_nothing(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway, body: Any
) -> None:
    before = await asset_rows(gateway)
    assert_problem(await api.post("/v2/nvcf/assets", json=body, headers=invoker), 400)
    assert await asset_rows(gateway) == before


async def test_assets_need_invoke_function(
    api: httpx.AsyncClient, admin: dict[str, str], mint: Minter, gateway: Gateway
) -> None:
    body = {"contentType": "image/png", "description": "x"}
    assert_problem(await api.post("/v2/nvcf/assets", json=body), 401)
    # The default admin token has no invoke_function scope.
    assert_problem(await api.post("/v2/nvcf/assets", json=body, headers=admin), 403)
    assert_problem(await api.get("/v2/nvcf/assets", headers=admin), 403)
    unmapped = {"Authorization": f"Bearer {mint('stranger', ['invoke_function'])}"}
    assert assert_problem(await api.post("/v2/nvcf/assets", json=body, headers=unmapped), 404)["detail"] == (
        "Unknown client_id"
    )
    assert await asset_rows(gateway) == 0


# --- round trip ------------------------------------------------------------------------------------


async def test_upload_then_download_round_trip(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway
) -> None:
    created = await create_asset(api, invoker)
    asset_id = created["assetId"]
    # Not an asset until its bytes arrived (as an S3 object in NVCF).
    assert_problem(await api.get(f"/v2/nvcf/assets/{asset_id}", headers=invoker), 404)
    assert (await api.get("/v2/nvcf/assets", headers=invoker)).json() == {"assets": []}

    put = await upload(api, created)
    assert put.status_code == 200
    assert put.content == b""

    got = await api.get(f"/v2/nvcf/assets/{asset_id}", headers=invoker)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert set(got.json()) == {"asset"}
    dto = got.json()["asset"]
    assert set(dto) == {"assetId", "description", "contentType", "createdAt"}
    assert (dto["assetId"], dto["description"], dto["contentType"]) == (asset_id, "cat picture", "image/png")
    assert dto["createdAt"].endswith("Z")

    listed = await api.get("/v2/nvcf/assets", headers=invoker)
    assert listed.status_code == 200
    assert listed.json() == {"assets": [dto]}

    redirect = await api.get(f"/v2/nvcf/assets/{asset_id}/content-redirect", headers=invoker)
    assert redirect.status_code == 200
    assert redirect.headers["content-type"] == "application/json"
    assert set(redirect.json()) == {"presignedUrl"}
    download = await api.get(redirect.json()["presignedUrl"])  # no bearer: the signature is the credential
    assert download.status_code == 200
    assert download.content == PAYLOAD
    assert download.headers["content-type"] == "image/png"
    assert download.headers[DESCRIPTION_HEADER] == "cat picture"
    assert download.headers["content-length"] == str(len(PAYLOAD))

    head = await api.head(redirect.json()["presignedUrl"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(PAYLOAD))

    [path] = stored_files(gateway)
    assert path == gateway.settings.asset_path / "nvcf-default" / asset_id
    assert path.read_bytes() == PAYLOAD


async def test_text_content_type_is_kept_exactly(api: httpx.AsyncClient, invoker: dict[str, str]) -> None:
    created = await create_asset(api, invoker, content_type="text/plain", description="notes")
    assert (await upload(api, created, b"hello")).status_code == 200
    redirect = await api.get(f"/v2/nvcf/assets/{created['assetId']}/content-redirect", headers=invoker)
    download = await api.get(redirect.json()["presignedUrl"])
    assert download.headers["content-type"] == "text/plain"
    assert download.content == b"hello"


async def test_streamed_upload_without_content_length(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway
) -> None:
    created = await create_asset(api, invoker)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(PAYLOAD), 1000):
            yield PAYLOAD[start : start + 1000]

    headers = {"Content-Type": "image/png", DESCRIPTION_HEADER: "cat picture"}
    response = await api.put(created["uploadUrl"], content=body(), headers=headers)
    assert response.status_code == 200
    content = await gateway.runtime.assets.read("nvcf-default", created["assetId"])
    assert b"".join([chunk async for chunk in content.chunks]) == PAYLOAD
    assert content.record.content_type == "image/png"


async def test_repeated_upload_replaces_the_bytes(api: httpx.AsyncClient, invoker: dict[str, str]) -> None:
    created = await uploaded_asset(api, invoker)
    assert (await upload(api, created, b"second version")).status_code == 200
    redirect = await api.get(f"/v2/nvcf/assets/{created['assetId']}/content-redirect", headers=invoker)
    assert (await api.get(redirect.json()["presignedUrl"])).content == b"second version"


async def test_read_for_the_invocation_layer(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway, other_admin: dict[str, str]
) -> None:
    created = await uploaded_asset(api, invoker)
    content = await gateway.runtime.assets.read("nvcf-default", created["assetId"])
    assert b"".join([chunk async for chunk in content.chunks]) == PAYLOAD
    with pytest.raises(AssetNotFound):
        await gateway.runtime.assets.read("other-account", created["assetId"])
    pending = await create_asset(api, invoker)
    with pytest.raises(AssetNotFound):
        await gateway.runtime.assets.read("nvcf-default", pending["assetId"])


# --- signatures --------------------------------------------------------------------------------------


async def test_expired_upload_url_is_403_and_stores_nothing(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway
) -> None:
    created = await create_asset(api, invoker)
    record = await gateway.runtime.assets.records.get(created["assetId"])
    assert record is not None
    expired = gateway.runtime.assets.upload_url("http://api.localhost", record, expires=int(time.time()) - 5)
    response = await upload(api, {**created, "uploadUrl": expired})
    assert assert_problem(response, 403)["detail"] == "Request has expired"
    assert stored_files(gateway) == []
    assert_problem(await api.get(f"/v2/nvcf/assets/{created['assetId']}", headers=invoker), 404)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url, q: with_query(url, signature=("0" if q["signature"][0] != "0" else "1") + q["signature"][1:]),
        lambda url, q: with_query(url, expires=str(int(q["expires"]) + 60)),
        lambda url, q: url.split("?")[0] + "?" + urlencode({"expires": q["expires"]}),
        lambda url, q: url.split("?")[0],
        lambda url, q: with_query(url, expires="soon"),
        lambda url, q: url.replace("/blob?", "/blob?x=1&").replace(
            urlsplit(url).path, f"/v2/nvcf/assets/{uuid.uuid4()}/blob"
        ),
    ],
    ids=["signature", "expires", "no-signature", "no-query", "bad-expires", "other-asset"],
)
async def test_tampered_upload_url_is_403(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway, tamper: Any
) -> None:
    created = await create_asset(api, invoker)
    query = {k: v[0] for k, v in parse_qs(urlsplit(created["uploadUrl"]).query).items()}
    response = await upload(api, {**created, "uploadUrl": tamper(created["uploadUrl"], query)})
    assert_problem(response, 403)
    assert stored_files(gateway) == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "image/jpeg", DESCRIPTION_HEADER: "cat picture"},
        {"Content-Type": "image/png", DESCRIPTION_HEADER: "dog picture"},
        {"Content-Type": "image/png"},
        {DESCRIPTION_HEADER: "cat picture"},
    ],
    ids=["content-type", "description", "no-description", "no-content-type"],
)
async def test_upload_headers_must_match_the_signed_ones(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway, headers: dict[str, str]
) -> None:
    created = await create_asset(api, invoker)
    response = await api.put(created["uploadUrl"], content=PAYLOAD, headers=headers)
    assert_problem(response, 403)
    assert stored_files(gateway) == []
    assert_problem(await api.get(f"/v2/nvcf/assets/{created['assetId']}", headers=invoker), 404)


async def test_download_url_signature_is_checked(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway
) -> None:
    created = await uploaded_asset(api, invoker)
    url = (await api.get(f"/v2/nvcf/assets/{created['assetId']}/content-redirect", headers=invoker)).json()[
        "presignedUrl"
    ]
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = "a" if signature[-1] != "a" else "b"
    assert_problem(await api.get(with_query(url, signature=signature[:-1] + flipped)), 403)
    # An upload URL is not a download URL, and the reverse.
    assert_problem(await api.get(created["uploadUrl"]), 403)
    assert_problem(await upload(api, {**created, "uploadUrl": url}), 403)
    record = await gateway.runtime.assets.records.get(created["assetId"])
    assert record is not None
    expired = gateway.runtime.assets.download_url("http://api.localhost", record, expires=int(time.time()) - 1)
    assert assert_problem(await api.get(expired), 403)["detail"] == "Request has expired"


async def test_bad_asset_id_in_blob_path_is_400(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v2/nvcf/assets/not-a-uuid/blob?expires=1&signature=00"), 400)


# --- size limit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"max_asset_bytes": 1000}])
async def test_too_large_upload_is_413_and_stores_nothing(
    api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway
) -> None:
    created = await create_asset(api, invoker)
    declared = await upload(api, created, b"x" * 1001)
    assert_problem(declared, 413)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(11):
            yield b"y" * 100

    headers = {"Content-Type": "image/png", DESCRIPTION_HEADER: "cat picture"}
    streamed = await api.put(created["uploadUrl"], content=body(), headers=headers)
    assert_problem(streamed, 413)
    assert stored_files(gateway) == []
    assert_problem(await api.get(f"/v2/nvcf/assets/{created['assetId']}", headers=invoker), 404)
    assert (await upload(api, created, b"z" * 1000)).status_code == 200


# --- ownership and delete ----------------------------------------------------------------------------


async def test_other_accounts_assets_are_404(
    api: httpx.AsyncClient, invoker: dict[str, str], other_invoker: dict[str, str]
) -> None:
    created = await uploaded_asset(api, invoker)
    asset = f"/v2/nvcf/assets/{created['assetId']}"
    detail = assert_problem(await api.get(asset, headers=other_invoker), 404)["detail"]
    assert detail == f"Asset '{created['assetId']}' does not exist for account 'other-account'"
    assert_problem(await api.get(asset + "/content-redirect", headers=other_invoker), 404)
    assert_problem(await api.delete(asset, headers=other_invoker), 404)
    assert (await api.get("/v2/nvcf/assets", headers=other_invoker)).json() == {"assets": []}
    assert (await api.get(asset, headers=invoker)).status_code == 200


async def test_delete_asset(api: httpx.AsyncClient, invoker: dict[str, str], gateway: Gateway) -> None:
    created = await uploaded_asset(api, invoker)
    asset = f"/v2/nvcf/assets/{created['assetId']}"
    url = (await api.get(asset + "/content-redirect", headers=invoker)).json()["presignedUrl"]
    response = await api.delete(asset, headers=invoker)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await api.get(asset, headers=invoker), 404)
    assert_problem(await api.delete(asset, headers=invoker), 404)
    assert_problem(await api.get(url), 404)
    assert_problem(await upload(api, created), 404)
    assert stored_files(gateway) == []
    assert await asset_rows(gateway) == 0


async def test_asset_id_must_be_a_uuid(api: httpx.AsyncClient, invoker: dict[str, str]) -> None:
    assert_problem(await api.get("/v2/nvcf/assets/abc", headers=invoker), 400)
    assert_problem(await api.delete("/v2/nvcf/assets/abc", headers=invoker), 400)
    assert_problem(await api.get("/v2/nvcf/assets/abc/content-redirect", headers=invoker), 400)


async def test_deleting_an_account_removes_its_assets(
    api: httpx.AsyncClient, operator: dict[str, str], other_invoker: dict[str, str], gateway: Gateway
) -> None:
    await uploaded_asset(api, other_invoker)
    assert len(stored_files(gateway)) == 1
    assert (await api.delete("/v2/nvcf/accounts/other-account", headers=operator)).status_code == 204
    assert stored_files(gateway) == []
    assert await asset_rows(gateway) == 0


async def test_openapi_lists_asset_and_account_paths(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/v3/openapi")).json()["paths"]
    assert set(paths["/v2/nvcf/assets"]) == {"get", "post"}
    assert set(paths["/v2/nvcf/assets/{assetId}"]) == {"get", "delete"}
    assert "/v2/nvcf/assets/{assetId}/content-redirect" in paths
    assert set(paths["/v2/nvcf/accounts/{ncaId}"]) == {"get", "post", "patch", "delete"}
    assert "/v2/nvcf/clients/{clientId}" in paths
