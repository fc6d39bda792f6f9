"""Who is calling: org membership and roles from the bearer JWT, as NICo's auth module maps them.

cfgate follows NICo's Keycloak processor: ``realm_access.roles`` entries ``"<org>:<ROLE>"`` give
the org its roles (legacy prefixes such as ``FORGE_``/``NICO_`` are stripped), and a token with a
``client_id`` claim is a service-account token, which holds PROVIDER_ADMIN and TENANT_ADMIN in each
org it names (service-account mode). The token is verified by cfgate's own issuer or a trusted
issuer (``--trusted-issuer``); only the org in the URL is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from gateway.auth.tokens import InvalidToken, TokenVerifier
from gateway.services.nico.errors import BadRequest, Forbidden, Unauthorized

PROVIDER_ADMIN = "PROVIDER_ADMIN"
PROVIDER_VIEWER = "PROVIDER_VIEWER"
TENANT_ADMIN = "TENANT_ADMIN"
ROLES = frozenset({PROVIDER_ADMIN, PROVIDER_VIEWER, TENANT_ADMIN})
PROVIDER_ROLES = (PROVIDER_ADMIN, PROVIDER_VIEWER)


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    org: str
    roles: frozenset[str]
    service_account: bool
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def require(self, *roles: str) -> None:
        """Any of ``roles`` passes (NICo's ValidateUserRoles)."""
        if not self.has(*roles):
            names = " or ".join(r.replace("_", " ").title() for r in roles)
            raise Forbidden(f"User does not have {names} role with org")


def normalize_role(raw: str) -> str | None:
    role = raw.strip().upper()
    if role in ROLES:
        return role
    _, sep, rest = role.partition("_")
    return rest if sep and rest in ROLES else None


def org_roles(claims: Mapping[str, object], org: str) -> tuple[frozenset[str], bool]:
    """The caller's roles in ``org`` and whether it is a service account there."""
    realm = claims.get("realm_access")
    entries = realm.get("roles") if isinstance(realm, dict) else None
    roles: set[str] = set()
    named = False
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, str):
            continue
        entry_org, sep, raw = entry.rpartition(":")
        if not sep or entry_org.lower() != org:
            continue
        named = True
        role = normalize_role(raw)
        if role:
            roles.add(role)
    service_account = named and isinstance(claims.get("client_id"), str)
    if service_account:
        roles |= {PROVIDER_ADMIN, TENANT_ADMIN}
    return frozenset(roles), service_account


async def authenticate(request: Request, verifier: TokenVerifier) -> Caller:
    org = str(request.path_params.get("org", "")).lower()
    if not org:
        raise BadRequest("Organization name is required in the URL")
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Request is missing authorization header")
    try:
        claims = await verifier.verify(token.strip())
    except InvalidToken:
        raise Unauthorized("Invalid authorization token") from None
    roles, service_account = org_roles(claims, org)
    if not roles:
        raise Forbidden("Requested organization not found in token claims")

    def text(*names: str) -> str | None:
        for name in names:
            value = claims.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    return Caller(
        subject=str(claims["sub"]),
        org=org,
        roles=roles,
        service_account=service_account,
        email=text("email"),
        first_name=text("given_name", "firstName", "first_name", "name", "preferred_username"),
        last_name=text("family_name", "lastName", "last_name"),
    )
