"""POST /v1/admin/keys: the bootstrap door that mints admin JWTs, and the JWKS that verifies them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest

from gateway.app import Gateway
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES
from tests.conftest import REMOTE_CLIENT, ClientFactory
from tests.gateway.helpers import assert_problem


def verify_with_jwks(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    matching = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(matching) == 1
    key = jwt.PyJWK(matching[0])
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["ES256"], options={"verify_aud": False})
    return claims


async def test_loopback_mints_es256_admin_token_verified_by_published_jwks(
    keys_client: httpx.AsyncClient,
) -> None:
    response = await keys_client.post("/v1/admin/keys")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    token = body["value"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["kid"]
    jwks = (await keys_client.get("/.well-known/jwks.json")).json()
    claims = verify_with_jwks(token, jwks)
    assert claims["scopes"] == list(ADMIN_DEFAULT_SCOPES)
    assert set(claims) == {"iss", "sub", "azp", "aud", "scopes", "iat", "nbf", "exp", "jti"}
    assert claims["sub"] == claims["azp"] == "admin-issuer-proxy"
    assert claims["aud"] == ["admin-issuer-proxy", "s:api"]
    assert claims["iss"] == "http://api.nvcf.svc.cluster.local"
    # nvcf-cli init parses expires_at as RFC 3339 and keeps the value.
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert int(expires.timestamp()) == claims["exp"]
    assert body["id"] == claims["jti"]
    assert (await keys_client.get("/v1/jwks")).json() == jwks


@pytest.mark.parametrize("body", [b"", b"{}"])
async def test_empty_or_empty_object_body_accepted(keys_client: httpx.AsyncClient, body: bytes) -> None:
    response = await keys_client.post("/v1/admin/keys", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["value"].count(".") == 2


async def test_operator_may_ask_for_other_scopes(keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.post("/v1/admin/keys", json={"scopes": ["authorize_clients", "account_setup"]})
    assert response.status_code == 200
    claims = jwt.decode(response.json()["value"], options={"verify_signature": False})
    assert claims["scopes"] == ["authorize_clients", "account_setup"]
    assert_problem(await keys_client.post("/v1/admin/keys", json={"scopes": ["root"]}), 400)
    assert_problem(await keys_client.post("/v1/admin/keys", json={"scopes": "invoke_function"}), 400)


async def test_remote_client_without_secret_is_refused(remote_keys_client: httpx.AsyncClient) -> None:
    response = await remote_keys_client.post("/v1/admin/keys", json={})
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("body", [b"{", b"[1]", b'"x"', b"nul"])
async def test_malformed_body_is_400(keys_client: httpx.AsyncClient, body: bytes) -> None:
    response = await keys_client.post("/v1/admin/keys", content=body)
    assert_problem(response, 400, "bad-request")


async def test_oversized_body_is_413(keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.post("/v1/admin/keys", content=b" " * (2 << 20))
    assert_problem(response, 413, "payload-too-large")


async def test_wrong_method_is_405_problem(keys_client: httpx.AsyncClient) -> None:
    response = await keys_client.get("/v1/admin/keys")
    assert_problem(response, 405, "method-not-allowed")


async def test_rotation_keeps_live_tokens_valid(gateway: Gateway, keys_client: httpx.AsyncClient) -> None:
    old = (await keys_client.post("/v1/admin/keys")).json()["value"]
    await gateway.runtime.keyring.rotate()
    new = (await keys_client.post("/v1/admin/keys")).json()["value"]
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    jwks = (await keys_client.get("/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 2
    verify_with_jwks(old, jwks)
    verify_with_jwks(new, jwks)
    for token in (old, new):
        assert (await gateway.runtime.verifier.verify(token))["sub"] == "admin-issuer-proxy"


class TestWithBootstrapSecret:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"bootstrap_secret": "s3cret-door", "bootstrap_loopback": False}

    async def test_remote_with_secret_gets_token(self, client_factory: ClientFactory) -> None:
        client = client_factory(client=REMOTE_CLIENT)
        response = await client.post("/v1/admin/keys", headers={"Cfgate-Bootstrap-Secret": "s3cret-door"})
        assert response.status_code == 200
        assert response.json()["value"]

    async def test_wrong_secret_is_refused(self, client_factory: ClientFactory) -> None:
        client = client_factory(client=REMOTE_CLIENT)
        response = await client.post("/v1/admin/keys", headers={"Cfgate-Bootstrap-Secret": "guess"})
        assert_problem(response, 403)

    async def test_loopback_closed_when_disabled(self, keys_client: httpx.AsyncClient) -> None:
        assert_problem(await keys_client.post("/v1/admin/keys"), 403)
