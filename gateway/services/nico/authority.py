"""Which NICo roles may call each operation: one rule per object family, checked before the handler.

The handlers check roles too (NICo's ValidateUserRoles), but some read and validate their body
first; this gate runs before anything else, so a role the rule refuses gets its 403 before a 400
could tell it about the request, and an operation the embedded service does not implement is still
authenticated (401/403) before its 501.
"""

from __future__ import annotations

from gateway.services.nico.roles import PROVIDER_ADMIN, PROVIDER_VIEWER, ROLES, TENANT_ADMIN

ANY_ROLE: frozenset[str] = ROLES
PROVIDER_ROLES = frozenset({PROVIDER_ADMIN, PROVIDER_VIEWER})
SHARED_READ = frozenset({PROVIDER_ADMIN, PROVIDER_VIEWER, TENANT_ADMIN})
# Provider-owned objects: the provider admin writes them; both sides read them (the tenant its share).
PROVIDER_FAMILIES = ("site", "machine", "instance/type", "ipblock", "allocation")
# Tenant-owned objects: only the tenant admin touches them.
TENANT_FAMILIES = ("vpc", "vpc-prefix", "subnet", "operating-system", "instance", "sshkeygroup", "sshkey")
# Reads only the provider side makes: the association listing and the derived blocks of a root.
PROVIDER_ONLY_READS = ("/instance/type/{instanceTypeId}/machine", "/ipblock/{ipBlockId}/derived")
# Any member of the org: who am I, and the service-account bootstrap.
MEMBER_PATHS = ("/metadata", "/user/current", "/service-account/current")


class NoRoleRule(LookupError):
    """An implemented operation of a family no rule covers: a new family needs its rule first."""


def family(path: str) -> str:
    parts = path.strip("/").split("/")
    return "instance/type" if parts[:2] == ["instance", "type"] else parts[0]


def allowed_roles(method: str, path: str) -> frozenset[str]:
    """The roles that pass for an implemented ``method path`` (below ``/v2/org/{org}/nico``)."""
    if path in MEMBER_PATHS:
        return ANY_ROLE
    if path.startswith("/infrastructure-provider/"):
        return PROVIDER_ROLES
    if path.startswith("/tenant/current"):
        return frozenset({TENANT_ADMIN})
    if family(path) == "tenant":  # tenant accounts: the provider invites and removes, the tenant accepts
        return {"GET": SHARED_READ, "PATCH": frozenset({TENANT_ADMIN})}.get(method, frozenset({PROVIDER_ADMIN}))
    if family(path) in PROVIDER_FAMILIES:
        if method != "GET":
            return frozenset({PROVIDER_ADMIN})
        return PROVIDER_ROLES if path in PROVIDER_ONLY_READS else SHARED_READ
    if family(path) in TENANT_FAMILIES:
        return frozenset({TENANT_ADMIN})
    raise NoRoleRule(f"{method} {path}")
