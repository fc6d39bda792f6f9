"""Turning verified credentials into hot-path ``Principal`` objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cext.hotpath import KIND_API_KEY, KIND_JWT, AuthorityTable, Principal
from gateway.auth.authority import OPERATOR_AUTHORITY
from gateway.auth.scopes import FUNCTIONS_PRODUCT, TASKS_PRODUCT, apikey_authorities, jwt_authorities
from gateway.store.apikeys import ApiKeyRecord


def claim_scopes(claims: dict[str, Any]) -> list[str]:
    scopes = claims.get("scopes", [])
    if isinstance(scopes, str):
        return scopes.split()
    if isinstance(scopes, list):
        return [s for s in scopes if isinstance(s, str)]
    return []


def from_claims(claims: dict[str, Any], nca_id: str, table: AuthorityTable, *, operator: bool = False) -> Principal:
    """``operator``: the local issuer's bootstrap admin (``gateway.auth.authority``), marked by an
    authority no claim can carry (a scope of that name in the claims is dropped)."""
    scopes = [s for s in claim_scopes(claims) if s != OPERATOR_AUTHORITY]
    authorities = jwt_authorities([*scopes, OPERATOR_AUTHORITY] if operator else scopes)
    return Principal(
        KIND_JWT,
        str(claims["sub"]),
        nca_id,
        authorities,
        table.mask(authorities),
        expires_at=float(claims["exp"]),
    )


def policies_of(authorizations: dict[str, Any]) -> list[dict[str, Any]]:
    policies = authorizations.get("policies", [])
    return [p for p in policies if isinstance(p, dict)] if isinstance(policies, list) else []


def from_api_key(record: ApiKeyRecord, table: AuthorityTable) -> Principal:
    """Scopes and function resources come from the key's ``nv-cloud-functions`` policies only.

    NVCF's control plane and invocation service evaluate keys in the ``nvcf`` namespace, whose
    answer carries the functions policy alone: a task-only key (``nv-cloud-tasks``) is refused
    there ("Authorization failed"), even for a scope both products know such as ``update_secrets``.
    Other policies (``nv-cloud-tasks``) only count for ``account_tasks``; their scopes will need
    their own view on the NVCT host.
    """
    scopes: list[str] = []
    resources: list[dict[str, Any]] = []
    all_resources: list[dict[str, Any]] = []
    for policy in policies_of(record.authorizations):
        policy_resources = [r for r in policy.get("resources", []) if isinstance(r, dict)]
        all_resources.extend(policy_resources)
        if policy.get("product", FUNCTIONS_PRODUCT) == FUNCTIONS_PRODUCT:
            scopes.extend(s for s in policy.get("scopes", []) if isinstance(s, str))
            resources.extend(policy_resources)
    authorities = apikey_authorities(scopes)
    grants = _function_grants(resources)
    return Principal(
        KIND_API_KEY,
        record.owner_id,
        record.nca_id,
        authorities,
        table.mask(authorities),
        key_id=record.id,
        expires_at=record.expires_at / 1000,
        account_functions=_has(resources, "account-functions"),
        authorized_functions=_has(resources, "authorized-functions"),
        function_grants=grants,
        account_tasks=_has(all_resources, "account-tasks"),
    )


def _has(resources: Iterable[dict[str, Any]], kind: str) -> bool:
    return any(r.get("type") == kind and r.get("id") == "*" for r in resources)


def _function_grants(resources: Iterable[dict[str, Any]]) -> dict[str, frozenset[str] | None]:
    """``{"type":"function","id":"<fid>/<vid>"}`` (``<vid>`` may be ``*``) → fid → versions."""
    versions: dict[str, set[str] | None] = {}
    for resource in resources:
        rid = resource.get("id")
        if resource.get("type") != "function" or not isinstance(rid, str):
            continue
        fid, _, vid = rid.lower().partition("/")
        if not fid:
            continue
        if not vid or vid == "*":
            versions[fid] = None
        elif fid not in versions or versions[fid] is not None:
            current = versions.get(fid)
            versions[fid] = (current or set()) | {vid}
    return {fid: (None if v is None else frozenset(v)) for fid, v in versions.items()}


def tasks_view(record: ApiKeyRecord, table: AuthorityTable) -> Principal:
    """The same key as the NVCT host sees it: scopes of its ``nv-cloud-tasks`` policies only.

    NVCT evaluates keys in the ``nvct`` namespace, whose answer carries the tasks policy alone, so
    a functions key has no task authority there (and a task key none on the control plane). A
    policy without the ``{"type":"account-tasks","id":"*"}`` resource grants nothing.
    """
    scopes: list[str] = []
    for policy in policies_of(record.authorizations):
        if policy.get("product") != TASKS_PRODUCT:
            continue
        resources = [r for r in policy.get("resources", []) if isinstance(r, dict)]
        if _has(resources, "account-tasks"):
            scopes.extend(s for s in policy.get("scopes", []) if isinstance(s, str))
    authorities = apikey_authorities(scopes)
    return Principal(
        KIND_API_KEY,
        record.owner_id,
        record.nca_id,
        authorities,
        table.mask(authorities),
        key_id=record.id,
        expires_at=record.expires_at / 1000,
        account_tasks=bool(scopes),
    )
