"""The NICo rows of the authorization matrix: every operation of the official document × every
credential kind × own/other org, against a real ``cfgate serve`` (SQLite and PostgreSQL).

What each cell must answer is computed from the role rule of the nico host
(``gateway.services.nico.authority.allowed_roles``: one rule per object family), never listed per
row:

* no bearer, a malformed bearer, an expired NICo token, a cfgate API key → 401 on every operation,
  implemented or not;
* a valid JWT naming none of the URL's org (another org's NICo token, cfgate's operator JWT, an
  account admin JWT of a trusted issuer, a NICo token whose only entry names no role) → 403;
* a role of the org the rules do not admit → 403; an admitted one → the handler's answer: a
  listing or current-object read 200 without any of the other org's ids, an id of the other org's
  objects 404 exactly as an unknown one, a create with an invalid body 400, and an operation the
  embedded service does not implement 501.

Org ``b`` builds a world (provider, tenant, site, machines, blocks, allocation, VPC, subnet, OS,
instance type, SSH keys, tenant account) through a service account; every path id of the matrix is
one of b's objects, and b's world must read back unchanged after the matrix ran.

The NICo token door (``POST /v1/admin/keys``) ignores every bearer: it opens to loopback clients or
to the bootstrap secret only (``test_the_nico_token_door_opens_to_the_secret_not_to_bearers``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.services.nico.app import OPERATIONS
from gateway.services.nico.authority import ANY_ROLE, NoRoleRule, allowed_roles
from gateway.services.nico.roles import PROVIDER_ADMIN, PROVIDER_VIEWER, ROLES, TENANT_ADMIN
from gateway.services.nico.spec_operations import SPEC_OPERATIONS
from tests.gateway.helpers import KEY_HEADERS, key_body
from tests.nico.conftest import PREFIX, NicoClient, Served, ServeFactory
from tests.nico.test_rules import PUBLIC_KEY
from tests.support.identity_provider import IdentityProvider

OWN, OTHER, THIRD = "org-a", "org-b", "org-c"
IDP_ISSUER = "https://idp-nico.example"
IPXE = "#!ipxe\nchain http://boot.example/ubuntu.ipxe"


def rule(method: str, path: str) -> frozenset[str]:
    """The roles admitted to ``method path``: the gate's rule; any member for an unimplemented one."""
    return allowed_roles(method, path) if (method, path) in OPERATIONS else ANY_ROLE


def test_every_implemented_operation_has_a_role_rule() -> None:
    for method, path in OPERATIONS:
        assert rule(method, path) <= ROLES
    with pytest.raises(NoRoleRule):
        allowed_roles("GET", "/rack")


# -- credentials ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Credential:
    name: str
    header: str | None  # the Authorization value
    roles: frozenset[str] | None  # NICo roles held in ``org``; None: not authenticated at all (401)
    org: str = OWN


@dataclass
class World:
    nico: Served
    credentials: list[Credential]
    ids: dict[str, str]  # path parameter → one of OTHER's objects
    query: dict[str, str]  # the side a tenant-account listing must name: OTHER's
    snapshot: dict[str, Any]


def bearer(token: str) -> str:
    return f"Bearer {token}"


def build_other_world(nico: Served) -> tuple[NicoClient, dict[str, str], dict[str, str]]:
    sa = nico.client(OTHER, nico.token(OTHER, service_account=True))
    account = sa.ok("GET", "/service-account/current")
    tenant_id = account["tenantId"]
    site = sa.wait_for(f"/site/{sa.ok('GET', '/site')[0]['id']}", "Registered")
    block = sa.ok(
        "POST",
        "/ipblock",
        {
            "name": "b-overlay",
            "siteId": site["id"],
            "routingType": "DatacenterOnly",
            "prefix": "10.200.0.0",
            "prefixLength": 16,
            "protocolVersion": "IPv4",
        },
        201,
    )
    allocation = sa.ok(
        "POST",
        "/allocation",
        {
            "name": "b-net",
            "tenantId": tenant_id,
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "IPBlock",
                    "resourceTypeId": block["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 16,
                }
            ],
        },
        201,
    )
    constraint = allocation["allocationConstraints"][0]
    vpc = sa.ok("POST", "/vpc", {"name": "b-vpc", "siteId": site["id"]}, 201)
    subnet = sa.ok(
        "POST",
        "/subnet",
        {"name": "b-subnet", "vpcId": vpc["id"], "ipv4BlockId": constraint["derivedResourceId"], "prefixLength": 24},
        201,
    )
    os_ = sa.ok("POST", "/operating-system", {"name": "b-os", "ipxeScript": IPXE}, 201)
    machines = sa.ok("GET", "/machine", siteId=site["id"])
    itype = sa.ok("POST", "/instance/type", {"name": "b-type", "siteId": site["id"]}, 201)
    association = sa.ok("POST", f"/instance/type/{itype['id']}/machine", {"machineIds": [machines[0]["id"]]}, 201)
    group = sa.ok("POST", "/sshkeygroup", {"name": "b-group"}, 201)
    key = sa.ok("POST", "/sshkey", {"name": "b-key", "publicKey": PUBLIC_KEY, "sshKeyGroupId": group["id"]}, 201)
    accounts = sa.ok("GET", "/tenant/account", infrastructureProviderId=account["infrastructureProviderId"])
    ids = {
        "siteId": site["id"],
        "machineId": machines[1]["id"],
        "instanceTypeId": itype["id"],
        "machineAssociationId": association[0]["id"] if isinstance(association, list) else association["id"],
        "ipBlockId": block["id"],
        "allocationId": allocation["id"],
        "allocationConstraintId": constraint["id"],
        "vpcId": vpc["id"],
        "subnetId": subnet["id"],
        "operatingSystemId": os_["id"],
        "sshKeyGroupId": group["id"],
        "sshKeyId": key["id"],
        "accountId": accounts[0]["id"],
    }
    query = {"infrastructureProviderId": account["infrastructureProviderId"], "tenantId": tenant_id}
    return sa, ids, query


def read_world(sa: NicoClient, ids: dict[str, str]) -> dict[str, Any]:
    """Every one of OTHER's objects as its owner reads it."""
    reads = {
        "siteId": "/site/{}",
        "machineId": "/machine/{}",
        "instanceTypeId": "/instance/type/{}",
        "ipBlockId": "/ipblock/{}",
        "allocationId": "/allocation/{}",
        "vpcId": "/vpc/{}",
        "subnetId": "/subnet/{}",
        "operatingSystemId": "/operating-system/{}",
        "sshKeyGroupId": "/sshkeygroup/{}",
        "sshKeyId": "/sshkey/{}",
        "accountId": "/tenant/account/{}",
    }
    world = {name: sa.ok("GET", path.format(ids[name])) for name, path in reads.items()}
    world["associations"] = sa.ok("GET", f"/instance/type/{ids['instanceTypeId']}/machine")
    return world


@pytest.fixture
def world(serve: ServeFactory) -> Iterator[World]:
    with IdentityProvider(IDP_ISSUER) as idp:
        nico = serve("--trusted-issuer", idp.trusted_issuer)
        sa, ids, query = build_other_world(nico)
        door = httpx.Client(base_url=nico.base, headers={"Host": "api-keys.localhost"}, timeout=30)
        operator = door.post("/v1/admin/keys", json={})
        assert operator.status_code == 200, operator.text
        api_key = door.post("/v1/keys", json=key_body(), headers=KEY_HEADERS)
        assert api_key.status_code == 200, api_key.text
        door.close()

        def realm(*entries: str) -> dict[str, Any]:
            return {"realm_access": {"roles": list(entries)}}

        credentials = [
            Credential("none", None, None),
            Credential("malformed", "Bearer not-a-jwt", None),
            Credential("not-bearer", "Basic " + "dXNlcjpwYXNz", None),
            Credential("expired", bearer(idp.mint("old", [], -600, realm(f"{OWN}:TENANT_ADMIN"))), None),
            Credential("cfgate-api-key", bearer(api_key.json()["value"]), None),
            Credential("cfgate-operator-jwt", bearer(operator.json()["value"]), frozenset()),
            Credential("cfgate-account-admin-jwt", bearer(idp.mint("team-admin", ["account_setup"])), frozenset()),
            # Another org's tokens: OTHER's own (never sent to OTHER's URL: its owner's calls are not cells)
            # and a third org's, which names neither URL org.
            Credential("other-org-service-account", bearer(nico.token(OTHER, service_account=True)), ANY_ROLE, OTHER),
            Credential("other-org-provider-admin", bearer(nico.token(OTHER, [PROVIDER_ADMIN])), ANY_ROLE, OTHER),
            Credential("third-org-service-account", bearer(nico.token(THIRD, service_account=True)), ANY_ROLE, THIRD),
            Credential("third-org-tenant-admin", bearer(nico.token(THIRD, [TENANT_ADMIN])), ANY_ROLE, THIRD),
            Credential("no-role-entry", bearer(idp.mint("x", [], 600, realm(f"{OWN}:SERVICE_ACCOUNT"))), frozenset()),
            Credential(
                "legacy-viewer",
                bearer(idp.mint("v", [], 600, realm(f"{OWN}:FORGE_PROVIDER_VIEWER"))),
                frozenset({PROVIDER_VIEWER}),
            ),
            Credential(
                "service-account",
                bearer(nico.token(OWN, service_account=True)),
                frozenset({PROVIDER_ADMIN, TENANT_ADMIN}),
            ),
        ]
        for role in sorted(ROLES):
            credentials.append(Credential(role.lower(), bearer(nico.token(OWN, [role])), frozenset({role})))
        yield World(nico, credentials, ids, query, read_world(sa, ids))


def expected(credential: Credential, org: str, method: str, path: str) -> int | tuple[int, ...]:
    if credential.roles is None:
        return 401
    held = credential.roles if org == credential.org else frozenset()
    if not held & rule(method, path):
        return 403
    if (method, path) not in OPERATIONS:
        return 501
    if "{" in path:
        # One of OTHER's objects named in OWN's URL: exactly as unknown. A write may fail its body
        # check first (400); it never reaches the object.
        return 404 if method in ("GET", "DELETE") else (400, 404)
    if method == "POST":
        return 400  # BAD_BODY
    return 200


# Fails validation everywhere it is read: a refused role must get its 403 before the body is looked at.
BAD_BODY = {"name": 12345, "description": 12345, "constraintValue": "x", "networkVirtualizationType": 1}


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def test_every_nico_operation_answers_every_credential_by_the_role_rules(world: World) -> None:
    http = world.nico.http
    other_ids = set(world.ids.values()) | set(world.query.values())
    wrong: list[str] = []
    cells = 0
    for method, path, operation in SPEC_OPERATIONS:
        url_path = concrete(path, world.ids)
        for org in (OWN, OTHER):
            url = PREFIX.format(org=org) + url_path
            for credential in world.credentials:
                if credential.org == org == OTHER:
                    continue
                headers = {"Authorization": credential.header} if credential.header else {}
                body = BAD_BODY if method in ("POST", "PATCH", "PUT") else None
                params = world.query if (method, path) == ("GET", "/tenant/account") else None
                response = http.request(method, url, json=body, params=params, headers=headers)
                cells += 1
                want = expected(credential, org, method, path)
                allowed = want if isinstance(want, tuple) else (want,)
                cell = f"{operation} {method} {path} org={org} {credential.name}"
                if response.status_code not in allowed:
                    wrong.append(f"{cell}: {response.status_code} (wanted {want}) {response.text[:120]}")
                    continue
                body_of = response.json() if response.content else None
                if response.status_code >= 400:
                    if not (isinstance(body_of, dict) and body_of.get("source") == "nico"):
                        wrong.append(f"{cell}: not NICo's error body: {response.text[:120]}")
                    if response.status_code == 401 and response.headers.get("www-authenticate") != "Bearer":
                        wrong.append(f"{cell}: 401 without WWW-Authenticate: Bearer")
                elif any(object_id in response.text for object_id in other_ids):
                    wrong.append(f"{cell}: shows an object of {OTHER}")
    crossing = sum(c.org == OTHER for c in world.credentials)
    assert cells == len(SPEC_OPERATIONS) * (2 * len(world.credentials) - crossing)
    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong[:60])
    sa = world.nico.client(OTHER, world.nico.token(OTHER, service_account=True))
    assert read_world(sa, world.ids) == world.snapshot


def test_the_nico_token_door_opens_to_the_secret_not_to_bearers(serve: ServeFactory) -> None:
    secret = "door-" + uuid.uuid4().hex
    closed = serve("--no-bootstrap-loopback", "--bootstrap-secret", secret)
    body = {"org": OWN, "roles": [PROVIDER_ADMIN]}
    opened = closed.http.post("/v1/admin/keys", json=body, headers={"Cfgate-Bootstrap-Secret": secret})
    assert opened.status_code == 200, opened.text
    admin = opened.json()["value"]
    service_account = closed.http.post(
        "/v1/admin/keys", json={"org": OWN, "serviceAccount": True}, headers={"Cfgate-Bootstrap-Secret": secret}
    ).json()["value"]
    operator = closed.http.post(
        "/v1/admin/keys", json={}, headers={"Host": "api-keys.localhost", "Cfgate-Bootstrap-Secret": secret}
    ).json()["value"]
    for name, headers in {
        "none": {},
        "wrong-secret": {"Cfgate-Bootstrap-Secret": secret + "x"},
        "nico-provider-admin": {"Authorization": bearer(admin)},
        "nico-service-account": {"Authorization": bearer(service_account)},
        "cfgate-operator": {"Authorization": bearer(operator)},
    }.items():
        refused = closed.http.post("/v1/admin/keys", json={"org": OTHER, "roles": [PROVIDER_ADMIN]}, headers=headers)
        assert refused.status_code == 403, (name, refused.text)
        assert refused.json()["source"] == "nico", name
