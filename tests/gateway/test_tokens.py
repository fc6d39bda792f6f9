"""Signing keys and admin JWTs: mint, verify, rotate, reload, and trusted external issuers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.keyring import KEYRING_FILE, KeyRing
from gateway.auth.tokens import InvalidToken, TokenIssuer, TokenVerifier

ISS = "http://api.nvcf.svc.cluster.local"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.open(tmp_path, retain_seconds=3600)


async def test_mint_and_verify(ring: KeyRing) -> None:
    token = TokenIssuer(ring, ISS, 600).mint("admin-issuer-proxy", ("list_functions",))
    claims = await TokenVerifier(ring, ISS).verify(token.value)
    assert claims["scopes"] == ["list_functions"]
    assert claims["exp"] - claims["iat"] == 600


def test_keyring_file_is_private_and_persistent(tmp_path: Path, ring: KeyRing) -> None:
    path = tmp_path / KEYRING_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    again = KeyRing.open(tmp_path, retain_seconds=3600)
    assert again.active.kid == ring.active.kid


async def test_other_process_rotation_is_picked_up(tmp_path: Path, ring: KeyRing) -> None:
    other = KeyRing.open(tmp_path, retain_seconds=3600)
    other.rotate()
    token = TokenIssuer(other, ISS, 600).mint("s", ())
    assert (await TokenVerifier(ring, ISS).verify(token.value))["sub"] == "s"


def test_rotation_drops_keys_whose_tokens_expired(tmp_path: Path) -> None:
    ring = KeyRing.open(tmp_path, retain_seconds=0)
    first = ring.active.kid
    ring.rotate()
    ring.rotate()
    kids = [k["kid"] for k in ring.jwks()["keys"]]
    assert first not in kids and len(kids) == 1


async def test_expired_and_not_yet_valid_and_tampered(ring: KeyRing) -> None:
    issuer, verifier = TokenIssuer(ring, ISS, 600), TokenVerifier(ring, ISS)
    with pytest.raises(InvalidToken):
        await verifier.verify(issuer.mint("s", (), ttl_seconds=-30).value)
    payload = {"iss": ISS, "sub": "s", "iat": 0, "exp": 2**40, "nbf": 2**39}
    future = jwt.encode(payload, ring.active.private_key, algorithm="ES256", headers={"kid": ring.active.kid})
    with pytest.raises(InvalidToken):
        await verifier.verify(future)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode({**payload, "nbf": 0}, forged_key, algorithm="ES256", headers={"kid": ring.active.kid})
    with pytest.raises(InvalidToken):
        await verifier.verify(forged)
    with pytest.raises(InvalidToken):
        await verifier.verify("not-a-jwt")


async def test_untrusted_issuer_refused(ring: KeyRing) -> None:
    token = TokenIssuer(ring, "http://evil", 600).mint("s", ())
    with pytest.raises(InvalidToken, match="untrusted issuer"):
        await TokenVerifier(ring, ISS).verify(token.value)


@pytest.fixture
def external_issuer() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey]]:
    """A real JWKS endpoint on loopback, as another identity provider would publish it."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="ext-1", alg="ES256", use="sig")
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks", key
    finally:
        server.shutdown()
        server.server_close()


async def test_trusted_issuer_by_jwks_url(
    ring: KeyRing, external_issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> None:
    url, key = external_issuer
    verifier = TokenVerifier(ring, ISS, {"https://idp.example": url})
    payload = {"iss": "https://idp.example", "sub": "user-1", "iat": 1, "exp": 2**40, "scopes": ["x"]}
    token = jwt.encode(payload, key, algorithm="ES256", headers={"kid": "ext-1"})
    assert (await verifier.verify(token))["sub"] == "user-1"
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidToken):
        await verifier.verify(jwt.encode(payload, other, algorithm="ES256", headers={"kid": "ext-1"}))


async def test_trusted_issuer_token_whose_alg_does_not_fit_its_key_is_invalid(
    ring: KeyRing, external_issuer: tuple[str, ec.EllipticCurvePrivateKey]
) -> None:
    url, _ = external_issuer
    verifier = TokenVerifier(ring, ISS, {"https://idp.example": url})
    payload = {"iss": "https://idp.example", "sub": "user-1", "iat": 1, "exp": 2**40}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "ext-1"})  # ext-1 is an EC key
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_rs256_token_naming_our_kid_is_invalid(ring: KeyRing) -> None:
    payload = {"iss": ISS, "sub": "s", "iat": 1, "exp": 2**40}
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": ring.active.kid})
    with pytest.raises(InvalidToken):
        await TokenVerifier(ring, ISS).verify(token)


def _count_reloads(ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each parse of the key file, as whether it ran off the event loop's thread."""
    calls: list[bool] = []
    parse = ring.reload
    loop_thread = threading.current_thread()

    def counting() -> None:
        calls.append(threading.current_thread() is not loop_thread)
        parse()

    monkeypatch.setattr(ring, "reload", counting)
    return calls


def _unknown_kid_token(kid: str) -> str:
    payload = {"iss": ISS, "sub": "s", "iat": 1, "exp": 2**40}
    return jwt.encode(payload, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})


async def test_unknown_kids_do_not_reparse_the_key_file_per_request(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(ring, ISS)
    reloads = _count_reloads(ring, monkeypatch)
    tokens = [_unknown_kid_token(f"cfgate-{i:016x}") for i in range(20)]
    for token in tokens[:5] + tokens[:5]:  # sequential, and repeats of the same kids
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await verifier.verify(token)
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens[5:]), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) for r in results)
    # The file did not change: it is never parsed again (a stat, in a thread, at most once a second).
    assert reloads == []


async def test_a_rotated_key_is_picked_up_after_a_storm_of_unknown_kids(
    tmp_path: Path, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(ring, ISS)
    reloads = _count_reloads(ring, monkeypatch)
    for i in range(5):
        with pytest.raises(InvalidToken):
            await verifier.verify(_unknown_kid_token(f"cfgate-{i:016x}"))
    other = KeyRing.open(tmp_path, retain_seconds=3600)  # as `cfgate rotate-signing-key` does
    other.rotate()
    token = TokenIssuer(other, ISS, 600).mint("after-rotation", ())
    # Within a second of the last reload: it waits for the next one instead of being refused.
    assert (await verifier.verify(token.value))["sub"] == "after-rotation"
    assert reloads == [True]  # one parse, off the event loop
    assert (await verifier.verify(token.value))["sub"] == "after-rotation"
    assert reloads == [True]
