"""Validation of API Keys service request bodies; every failure is a 400 with a precise detail."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from gateway.auth.scopes import ALL_SCOPES, FUNCTIONS_PRODUCT, TASKS_PRODUCT
from gateway.problems import BadRequest, NotFound
from gateway.services.apikeys.issuers import ISSUERS
from gateway.store.clock import parse_rfc3339

DESCRIPTION = re.compile(r"^[a-zA-Z0-9\s_-]{1,64}$")
RESOURCE_TYPES = {"account-functions", "authorized-functions", "function", "account-tasks"}
PRODUCTS = {FUNCTIONS_PRODUCT, TASKS_PRODUCT}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_POLICIES = 16
MAX_RESOURCES = 256


@dataclass(frozen=True, slots=True)
class CreateKey:
    description: str
    expires_at_ms: int
    audience_service_ids: list[str]
    authorizations: dict[str, Any]


def parse_key_id(raw: str) -> str:
    if not _UUID.match(raw):  # every key id is a UUID: anything else names no key
        raise NotFound("Key not found.")
    return str(uuid.UUID(raw))


def _fail(field: str, rejected: Any, message: str) -> BadRequest:
    shown = repr(rejected) if not isinstance(rejected, str) else rejected[:80]
    return BadRequest(f"Validation failed: [field={field}, rejected={shown}, message={message}]")


def parse_create(body: dict[str, Any], now_ms: int, max_lifetime_ms: int) -> CreateKey:
    description = body.get("description", "")
    if not isinstance(description, str) or not DESCRIPTION.match(description):
        raise _fail("description", description, "must match ^[a-zA-Z0-9\\s_-]{1,64}$")
    raw_expiry = body.get("expires_at")
    if raw_expiry is None:
        raise _fail("expires_at", None, "must not be null")
    if not isinstance(raw_expiry, str):
        raise _fail("expires_at", raw_expiry, "must be an RFC 3339 timestamp string")
    try:
        expires_at = parse_rfc3339(raw_expiry)
    except ValueError:
        raise _fail("expires_at", raw_expiry, "must be an RFC 3339 timestamp") from None
    if expires_at <= now_ms:
        raise _fail("expires_at", raw_expiry, "must be in the future")
    if expires_at > now_ms + max_lifetime_ms:
        raise _fail("expires_at", raw_expiry, f"must be within {max_lifetime_ms // 86_400_000} days")
    audiences = body.get("audience_service_ids", [])
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _fail("audience_service_ids", audiences, "must be a list of service ids")
    unknown = [a for a in audiences if a not in ISSUERS]
    if unknown:
        raise _fail("audience_service_ids", unknown[0], "unknown service id")
    if "authorizations" not in body or body["authorizations"] is None:
        raise _fail("authorizations", None, "must not be null")
    return CreateKey(
        description, expires_at, list(dict.fromkeys(audiences)), parse_authorizations(body["authorizations"])
    )


def parse_authorizations(value: Any) -> dict[str, Any]:
    """Normalise ``{"policies": [...]}``; unknown scopes, products or resource types are refused."""
    if not isinstance(value, dict):
        raise _fail("authorizations", value, "must be an object")
    policies = value.get("policies")
    if not isinstance(policies, list) or not policies:
        raise _fail("authorizations.policies", policies, "must be a non-empty list")
    if len(policies) > MAX_POLICIES:
        raise _fail("authorizations.policies", len(policies), f"at most {MAX_POLICIES} policies")
    return {"policies": [_policy(i, p) for i, p in enumerate(policies)]}


def _policy(index: int, policy: Any) -> dict[str, Any]:
    where = f"authorizations.policies[{index}]"
    if not isinstance(policy, dict):
        raise _fail(where, policy, "must be an object")
    product = policy.get("product", FUNCTIONS_PRODUCT)
    if product not in PRODUCTS:
        raise _fail(f"{where}.product", product, f"must be one of {sorted(PRODUCTS)}")
    scopes = policy.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise _fail(f"{where}.scopes", scopes, "must be a non-empty list of strings")
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise _fail(f"{where}.scopes", unknown[0], "unknown scope")
    resources = policy.get("resources", [])
    if not isinstance(resources, list) or len(resources) > MAX_RESOURCES:
        raise _fail(f"{where}.resources", resources, f"must be a list of at most {MAX_RESOURCES}")
    normalised: dict[str, Any] = {
        "product": product,
        "scopes": list(dict.fromkeys(scopes)),
        "resources": [_resource(f"{where}.resources[{i}]", r) for i, r in enumerate(resources)],
    }
    for optional in ("aud", "auds"):
        if optional in policy:
            normalised[optional] = _audience(f"{where}.{optional}", policy[optional], many=optional == "auds")
    return normalised


def _audience(where: str, value: Any, *, many: bool) -> Any:
    if many:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(where, value, "must be a list of strings")
        return value
    if not isinstance(value, str):
        raise _fail(where, value, "must be a string")
    return value


def _resource(where: str, resource: Any) -> dict[str, str]:
    if not isinstance(resource, dict):
        raise _fail(where, resource, "must be an object")
    kind, rid = resource.get("type"), resource.get("id")
    if kind not in RESOURCE_TYPES:
        raise _fail(f"{where}.type", kind, f"must be one of {sorted(RESOURCE_TYPES)}")
    if not isinstance(rid, str) or not rid:
        raise _fail(f"{where}.id", rid, "must be a non-empty string")
    if kind == "function":
        fid, sep, vid = rid.partition("/")
        if not _UUID.match(fid) or (sep and vid != "*" and not _UUID.match(vid)):
            raise _fail(f"{where}.id", rid, "must be '<functionId>', '<functionId>/<versionId>' or '<functionId>/*'")
        rid = fid.lower() + ("/" + vid.lower() if sep else "/*")
    elif rid != "*":
        raise _fail(f"{where}.id", rid, "must be '*'")
    return {"id": rid, "type": kind}
