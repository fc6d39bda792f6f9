"""Admin JWTs: minted with the active ring key, verified against the ring or a trusted JWKS.

Every way a bearer can fail to verify ends as ``InvalidToken`` (a 401, or UNAUTHENTICATED on
the worker endpoint), never as another exception: the algorithm is pinned to the key's type
(own keys ES256 only; a trusted JWKS key its own family), so a token whose ``alg`` does not fit
the key (RS256 naming one of our EC keys) is refused instead of reaching a library ``TypeError``.
Anything unforeseen is still refused, its traceback logged at most once per cause.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.keyring import ALGORITHM, KeyRing
from gateway.tracebacks import log_failure

log = logging.getLogger("gateway.auth.tokens")

API_AUDIENCE = "s:api"
ALLOWED_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512"]
REQUIRED_CLAIMS = ["iss", "sub", "exp", "iat"]
# Our kids are "cfgate-" + 16 hex digits; longer ones are not looked up (nor remembered).
MAX_KID_LENGTH = 128
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class InvalidToken(Exception):
    """The bearer is not a JWT this gateway trusts (bad signature, expired, unknown issuer…)."""


@dataclass(frozen=True, slots=True)
class MintedToken:
    value: str
    claims: dict[str, Any]


class TokenIssuer:
    def __init__(self, ring: KeyRing, issuer: str, ttl_seconds: int) -> None:
        self._ring = ring
        self._issuer = issuer
        self._ttl = ttl_seconds

    def mint(self, subject: str, scopes: tuple[str, ...] | list[str], ttl_seconds: int | None = None) -> MintedToken:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "azp": subject,
            "aud": [subject, API_AUDIENCE],
            "scopes": list(scopes),
            "iat": now,
            "nbf": now,
            "exp": now + (ttl_seconds or self._ttl),
            "jti": str(uuid.uuid4()),
        }
        key = self._ring.active
        value = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return MintedToken(value, claims)


class TokenVerifier:
    """Checks signature, issuer, expiry and not-before. The issuer picks the key source."""

    def __init__(self, ring: KeyRing, issuer: str, trusted_jwks: Mapping[str, str] | None = None) -> None:
        self._ring = ring
        self._issuer = issuer
        self._remote = {
            iss: jwt.PyJWKClient(url, cache_keys=True, lifespan=300) for iss, url in (trusted_jwks or {}).items()
        }

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            return await self._verify(token)
        except InvalidToken:
            raise
        except Exception as exc:  # a library failing on input it did not foresee: still a refusal
            log_failure(log, "unexpected failure verifying a bearer token", exc)
            raise InvalidToken(f"unverifiable token ({type(exc).__name__})") from exc

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        issuer = unverified.get("iss")
        kid = header.get("kid")
        if issuer == self._issuer:
            key: Any = await self._own_key(kid)
        elif isinstance(issuer, str) and issuer in self._remote:
            client = self._remote[issuer]
            try:
                signing = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            except jwt.PyJWTError as exc:
                raise InvalidToken(f"no key for issuer {issuer!r}: {exc}") from exc
            key = signing.key
        else:
            raise InvalidToken("untrusted issuer")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=_algorithms_for(key),
                issuer=issuer,
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if not isinstance(claims.get("sub"), str):
            raise InvalidToken("sub claim must be a string")
        return claims

    async def _own_key(self, kid: object) -> Any:
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no kid")
        if len(kid) > MAX_KID_LENGTH:
            raise InvalidToken("unknown signing key")
        key = await self._ring.lookup(kid)  # a kid rotated in by another process is found too
        if key is None:
            raise InvalidToken("unknown signing key")
        return key.private_key.public_key()


def _algorithms_for(key: Any) -> list[str]:
    """The algorithms a key may verify: ours are ES256 (``ALGORITHM``), a JWKS key its family."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise InvalidToken(f"unsupported curve {key.curve.name}")
        return [algorithm]
    if isinstance(key, rsa.RSAPublicKey):
        return [a for a in ALLOWED_ALGORITHMS if a[:2] == "RS"]
    raise InvalidToken(f"unsupported key type {type(key).__name__}")
