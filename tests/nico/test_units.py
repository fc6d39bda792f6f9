"""Pure parts: IPAM carving, the operation table against the official document, role mapping."""

from __future__ import annotations

import importlib
import ipaddress
from typing import Any

import pytest

from gateway.services.nico import ipam
from gateway.services.nico.app import OPERATIONS
from gateway.services.nico.roles import org_roles
from gateway.services.nico.spec_operations import SPEC_OPERATIONS
from tests.nico.conftest import OFFICIAL_SPEC
from tests.plugins.servers import in_ci


def net(text: str) -> ipam.Network:
    return ipaddress.ip_network(text)


def test_carve_takes_the_lowest_aligned_free_prefix() -> None:
    parent = net("10.0.0.0/24")
    assert ipam.carve(parent, 26, []) == net("10.0.0.0/26")
    assert ipam.carve(parent, 26, [net("10.0.0.0/26")]) == net("10.0.0.64/26")
    # A small block in the way pushes a larger one to the next aligned start.
    assert ipam.carve(parent, 25, [net("10.0.0.8/29")]) == net("10.0.0.128/25")
    assert ipam.carve(parent, 28, [net("10.0.0.0/28"), net("10.0.0.32/28")]) == net("10.0.0.16/28")
    assert ipam.carve(parent, 25, [net("10.0.0.0/25"), net("10.0.0.128/26")]) is None
    assert ipam.carve(parent, 23, []) is None and ipam.carve(parent, 33, []) is None
    assert ipam.carve(net("fd00::/64"), 80, [net("fd00::/80")]) == net("fd00:0:0:0:1::/80")


def test_network_requires_the_network_address() -> None:
    assert ipam.network("192.168.0.0", 20) == net("192.168.0.0/20")
    with pytest.raises(ipam.PrefixError):
        ipam.network("192.168.1.0", 20)
    with pytest.raises(ipam.PrefixError):
        ipam.network("not-an-ip", 8)


def test_usage_counts_acquired_and_free() -> None:
    stats = ipam.usage(net("10.0.0.0/24"), [net("10.0.0.0/25")])
    assert stats == {
        "availableIPs": 128,
        "acquiredIPs": 128,
        "availablePrefixes": ["10.0.0.128/25"],
        "acquiredPrefixes": 1,
        "availableSmallestPrefixes": 32,
    }


def test_every_implemented_operation_is_in_the_official_document() -> None:
    spec = {(m, p) for m, p, _ in SPEC_OPERATIONS}
    assert set(OPERATIONS) <= spec and len(SPEC_OPERATIONS) == 176


def test_spec_operations_match_the_official_document() -> None:
    yaml: Any = importlib.import_module("yaml")  # schemathesis's dependency; no stubs here
    if not OFFICIAL_SPEC.is_file():
        assert not in_ci(), f"the official NICo OpenAPI document is missing at {OFFICIAL_SPEC}"
        pytest.skip(f"the official NICo OpenAPI document is not at {OFFICIAL_SPEC} (set NICO_OPENAPI)")
    document = yaml.safe_load(OFFICIAL_SPEC.read_text())
    found = {
        (method.upper(), path.removeprefix("/v2/org/{org}/nico"), op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert found == set(SPEC_OPERATIONS)


def test_keycloak_style_roles_and_service_accounts() -> None:
    claims = {"realm_access": {"roles": ["Acme:FORGE_PROVIDER_ADMIN", "acme:TENANT_ADMIN", "other:PROVIDER_VIEWER"]}}
    assert org_roles(claims, "acme") == (frozenset({"PROVIDER_ADMIN", "TENANT_ADMIN"}), False)
    assert org_roles(claims, "nobody") == (frozenset(), False)
    service = {"client_id": "svc", "realm_access": {"roles": ["colo:SERVICE_ACCOUNT"]}}
    assert org_roles(service, "colo") == (frozenset({"PROVIDER_ADMIN", "TENANT_ADMIN"}), True)
