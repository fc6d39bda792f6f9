"""Who is calling a control-plane endpoint, and may they: bearer, bootstrap door, scope rules."""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING

from starlette.requests import Request

from cext.hotpath import BEARER_MISSING, BEARER_OK, KIND_JWT, Principal, extract_bearer
from gateway.auth.authority import may_see_function, may_use_function
from gateway.auth.scopes import APIKEY_PREFIX
from gateway.problems import Forbidden, Unauthorized
from invoker.logs import bind

if TYPE_CHECKING:
    from gateway.runtime import Runtime

BOOTSTRAP_SECRET_HEADER = "cfgate-bootstrap-secret"
# NVCF's answer when an API key's resources do not name the function (pexec's precedent).
MISSING_RESOURCE = "Missing resource entry in ApiKey for the function"


async def optional_principal(request: Request, runtime: Runtime) -> Principal | None:
    """The caller's principal, ``None`` without an Authorization header; 401 if it is invalid."""
    raw = request.headers.get("authorization")
    status, token = extract_bearer(raw.encode("latin-1") if raw is not None else None)
    if status == BEARER_MISSING:
        return None
    if status != BEARER_OK or token is None:
        raise Unauthorized("Unauthorized access")
    principal = await runtime.authenticator.authenticate(token)
    bind(account=principal.nca_id)  # on this request's log lines, the access line too
    return principal


async def required_principal(request: Request, runtime: Runtime) -> Principal:
    principal = await optional_principal(request, runtime)
    if principal is None:
        raise Unauthorized("Header of type `authorization` was missing")
    return principal


def require_any_scope(principal: Principal, scopes: tuple[str, ...], *, jwt_only: bool = False) -> None:
    """Spring's ``hasAnyAuthority(s…, 'apikey:' + s…)`` (JWT-only: ``hasAnyAuthority(s…)``)."""
    names = scopes if jwt_only else scopes + tuple(APIKEY_PREFIX + s for s in scopes)
    if principal.authorities.isdisjoint(names):
        wanted = " or ".join(f"'{s}'" for s in scopes)
        kind = "admin token scope" if jwt_only else "scope"
        raise Forbidden(f"Missing required {kind} {wanted}")


def require_jwt(principal: Principal) -> None:
    if principal.kind != KIND_JWT:
        raise Forbidden("This operation requires an admin token, not an API key")


def bootstrap_door_open(request: Request, runtime: Runtime) -> bool:
    """Loopback callers (unless disabled) and holders of the configured bootstrap secret."""
    settings = runtime.settings
    secret = request.headers.get(BOOTSTRAP_SECRET_HEADER)
    if settings.bootstrap_secret and secret is not None:
        return hmac.compare_digest(secret.encode(), settings.bootstrap_secret.encode())
    if not settings.bootstrap_loopback or request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def key_may_use(principal: Principal, runtime: Runtime, function_id: str, version_id: str | None = None) -> bool:
    """False only for an API key whose resources do not allow a function its account can see."""
    if principal.kind == KIND_JWT:
        return True
    route = runtime.routes.get(function_id)
    if route is None or not may_see_function(principal, route, version_id):
        return True  # unknown to the caller's account: the handler answers its 404 as for any other
    return may_use_function(principal, route, function_id, version_id)


def require_function_resource(
    principal: Principal, runtime: Runtime, function_id: str, version_id: str | None = None
) -> None:
    """An API key's function resources bind on every endpoint naming a function: 403 otherwise."""
    if not key_may_use(principal, runtime, function_id, version_id):
        raise Forbidden(MISSING_RESOURCE)
