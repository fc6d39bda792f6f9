"""Local NICo bearer tokens: ``POST /v1/admin/keys`` on ``nico.<domain>``, behind the bootstrap door.

The body names the org and its roles (or service-account mode); the token is signed by cfgate's own
issuer with the claims NICo's Keycloak processor reads (``realm_access.roles`` as ``org:ROLE``,
``client_id`` for a service account), so a real Keycloak token works the same way.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from gateway.auth.keyring import ALGORITHM, KeyRing
from gateway.services.nico.roles import ROLES
from gateway.services.nico.validation import Fields

MAX_TTL_SECONDS = 7 * 86400


def parse_token_request(body: dict[str, Any]) -> tuple[str, list[str], bool, str, int]:
    fields = Fields(body)
    org = fields.string("org", required=True, min_len=1, max_len=128, pattern=r"^[A-Za-z0-9-_]+$")
    roles = fields.array("roles") or []
    if not all(isinstance(r, str) and r in ROLES for r in roles):
        fields.errors["roles"] = f"each must be one of {', '.join(sorted(ROLES))}"
    service_account = bool(fields.boolean("serviceAccount"))
    if not roles and not service_account:
        fields.errors["roles"] = "give at least one role, or serviceAccount: true"
    subject = fields.string("sub", min_len=1, max_len=256) or f"nico-{uuid.uuid4()}"
    ttl = fields.integer("ttlSeconds", lo=60, hi=MAX_TTL_SECONDS) or 3600
    fields.check("token request")
    assert org is not None
    return org.lower(), list(roles), service_account, subject, ttl


def mint_nico_token(
    ring: KeyRing,
    issuer: str,
    org: str,
    roles: list[str],
    service_account: bool,
    subject: str,
    ttl: int,
    email: str | None = None,
) -> tuple[str, dict[str, Any]]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "realm_access": {"roles": [f"{org}:{role}" for role in roles] or [f"{org}:SERVICE_ACCOUNT"]},
    }
    if service_account:
        claims["client_id"] = subject
    if email:
        claims["email"] = email
    key = ring.active
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid}), claims
