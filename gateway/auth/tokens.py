"""Admin JWTs: minted with the active ring key, verified against the ring or a trusted JWKS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.auth.keyring import ALGORITHM, KeyRing

API_AUDIENCE = "s:api"
ALLOWED_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512"]
REQUIRED_CLAIMS = ["iss", "sub", "exp", "iat"]


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
                algorithms=ALLOWED_ALGORITHMS,
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
        if not isinstance(kid, str):
            raise InvalidToken("token has no kid")
        key = self._ring.get(kid)
        if key is None:
            await self._ring.refresh()  # rotated by another process or host
            key = self._ring.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        return key.private_key.public_key()
