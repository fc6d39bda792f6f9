"""Roles, org isolation, bad input (nothing written), preconditions, 501 for unimplemented
operations, tokens, and upstream mode — against a real ``cfgate serve``."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx

from tests.nico.conftest import HOST, NicoClient, Served, ServeFactory
from tests.nico.relay import HeaderRelay
from tests.nico.test_flows import listed, provider_setup


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"source", "message", "data"} and body["source"] == "nico"
    return body


def test_auth_roles_and_org_isolation(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site = ctx["site"]
    anonymous = nico.http.get("/v2/org/acme-provider/nico/site")
    error(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    error(nico.http.get("/v2/org/acme-provider/nico/site", headers={"Authorization": "Bearer not-a-jwt"}), 401)
    # The token's org is not the URL's org.
    assert (
        "organization"
        in error(tenant.http.get("/v2/org/acme-provider/nico/site", headers=tenant.headers), 403)["message"]
    )
    # Provider-only operations refuse tenants.
    error(tenant.call("POST", "/site", {"name": "tenant-site"}), 403)
    error(
        tenant.call(
            "POST",
            "/ipblock",
            {
                "name": "x1",
                "siteId": site["id"],
                "routingType": "Public",
                "prefix": "10.0.0.0",
                "prefixLength": 8,
                "protocolVersion": "IPv4",
            },
        ),
        403,
    )
    error(tenant.call("GET", "/infrastructure-provider/current"), 403)
    # The viewer reads but does not write.
    viewer = nico.client("acme-provider", nico.token("acme-provider", ["PROVIDER_VIEWER"]))
    assert listed(viewer, "/site")[0]["id"] == site["id"]
    error(viewer.call("PATCH", f"/site/{site['id']}", {"name": "renamed"}), 403)
    error(viewer.call("POST", "/vpc", {"name": "v1", "siteId": site["id"]}), 403)
    # Legacy prefixed roles still map.
    legacy = nico.client("acme-provider", nico.token("acme-provider", ["PROVIDER_ADMIN"]))
    assert legacy.ok("GET", f"/site/{site['id']}")["id"] == site["id"]
    # Another provider org sees nothing of the first one's, and cannot touch it.
    other = nico.client("zeta-provider", nico.token("zeta-provider", ["PROVIDER_ADMIN"]))
    assert listed(other, "/site") == [] and listed(other, "/machine") == []
    error(other.call("GET", f"/site/{site['id']}"), 404)
    error(other.call("DELETE", f"/site/{site['id']}"), 404)
    error(other.call("GET", f"/tenant/account/{ctx['account']['id']}"), 404)
    assert provider.ok("GET", f"/site/{site['id']}")["status"] == "Registered"
    # Tenants without an allocation see no site; tenant objects are invisible to other tenants.
    assert listed(tenant, "/site") == []
    error(tenant.call("POST", "/vpc", {"name": "v1", "siteId": site["id"]}), 403)


def counts(client: NicoClient) -> dict[str, int]:
    return {
        path: len(listed(client, path, pageSize=100)) for path in ("/site", "/ipblock", "/allocation", "/instance/type")
    }


def test_bad_input_changes_nothing(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "blk",
            "siteId": site["id"],
            "routingType": "Public",
            "prefix": "10.1.0.0",
            "prefixLength": 24,
            "protocolVersion": "IPv4",
        },
        201,
    )
    before = counts(provider)

    body = error(provider.call("POST", "/site", {}), 400)
    assert body["data"] == {"name": "cannot be blank"}
    assert error(provider.call("POST", "/site", {"name": 7}), 400)["data"] == {"name": "must be a string"}
    error(provider.http.post(provider.url("/site"), content=b"{not json", headers=provider.headers), 400)
    assert (
        "prefix"
        in error(
            provider.call(
                "POST",
                "/ipblock",
                {
                    "name": "bad",
                    "siteId": site["id"],
                    "routingType": "Public",
                    "prefix": "10.1.0.1",
                    "prefixLength": 24,
                    "protocolVersion": "IPv4",
                },
            ),
            400,
        )["data"]
    )
    # Overlapping site blocks.
    overlap = error(
        provider.call(
            "POST",
            "/ipblock",
            {
                "name": "over",
                "siteId": site["id"],
                "routingType": "Public",
                "prefix": "10.1.0.128",
                "prefixLength": 25,
                "protocolVersion": "IPv4",
            },
        ),
        409,
    )
    assert overlap["data"] == {"id": block["id"]}
    error(
        provider.call(
            "POST",
            "/ipblock",
            {
                "name": "blk",
                "siteId": site["id"],
                "routingType": "Public",
                "prefix": "10.2.0.0",
                "prefixLength": 24,
                "protocolVersion": "IPv4",
            },
        ),
        409,
    )
    error(provider.call("GET", "/site/00000000-0000-4000-8000-000000000000"), 404)
    error(provider.call("GET", "/site/not-a-uuid"), 400)
    # Over-allocation: more machines than assigned, and a prefix the block cannot hold.
    itype = provider.ok("POST", "/instance/type", {"name": "small", "siteId": site["id"]}, 201)
    before = counts(provider)
    error(
        provider.call(
            "POST",
            "/allocation",
            {
                "name": "too-many",
                "tenantId": me["id"],
                "siteId": site["id"],
                "allocationConstraints": [
                    {
                        "resourceType": "InstanceType",
                        "resourceTypeId": itype["id"],
                        "constraintType": "Reserved",
                        "constraintValue": 1,
                    }
                ],
            },
        ),
        409,
    )
    error(
        provider.call(
            "POST",
            "/allocation",
            {
                "name": "too-big",
                "tenantId": me["id"],
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
        ),
        409,
    )
    error(
        provider.call("POST", "/allocation", {"name": "no-constraint", "tenantId": me["id"], "siteId": site["id"]}), 400
    )
    assert counts(provider) == before
    # Deleting in use.
    allocation = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "net",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "IPBlock",
                    "resourceTypeId": block["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 25,
                }
            ],
        },
        201,
    )
    error(provider.call("DELETE", f"/site/{site['id']}"), 403)
    error(provider.call("DELETE", f"/ipblock/{block['id']}"), 400)
    error(provider.call("DELETE", f"/tenant/account/{ctx['account']['id']}"), 403)
    tenant_block = allocation["allocationConstraints"][0]["derivedResourceId"]
    vpc = tenant.ok("POST", "/vpc", {"name": "vpc", "siteId": site["id"]}, 201)
    subnet = tenant.ok(
        "POST", "/subnet", {"name": "s1", "vpcId": vpc["id"], "ipv4BlockId": tenant_block, "prefixLength": 26}, 201
    )
    tenant.ok(
        "POST", "/subnet", {"name": "s2", "vpcId": vpc["id"], "ipv4BlockId": tenant_block, "prefixLength": 26}, 201
    )
    # The /25 holds two /26 only; out-of-range lengths are refused before IPAM.
    error(
        tenant.call(
            "POST", "/subnet", {"name": "s3", "vpcId": vpc["id"], "ipv4BlockId": tenant_block, "prefixLength": 26}
        ),
        400,
    )
    assert error(
        tenant.call(
            "POST", "/subnet", {"name": "s4", "vpcId": vpc["id"], "ipv4BlockId": tenant_block, "prefixLength": 31}
        ),
        400,
    )["data"] == {"prefixLength": "must be between 8 and 30"}
    assert len(listed(tenant, "/subnet")) == 2
    error(provider.call("DELETE", f"/allocation/{allocation['id']}"), 400)
    error(tenant.call("DELETE", f"/vpc/{vpc['id']}"), 400)
    assert tenant.call("DELETE", f"/subnet/{subnet['id']}").status_code == 202
    # Paging parameters are checked.
    error(provider.call("GET", "/site", orderBy="BOGUS"), 400)
    error(provider.call("GET", "/site", pageSize=101), 400)
    page = provider.call("GET", "/site", pageSize=1, orderBy="NAME_ASC")
    assert page.headers["X-Pagination"] == '{"pageNumber":1,"pageSize":1,"total":1,"orderBy":"NAME_ASC"}'


def test_concurrent_carves_never_overlap(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "race",
            "siteId": site["id"],
            "routingType": "Public",
            "prefix": "10.9.0.0",
            "prefixLength": 26,
            "protocolVersion": "IPv4",
        },
        201,
    )

    def allocate(n: int) -> int:
        with httpx.Client(base_url=nico.base, headers={"Host": HOST, **provider.headers}, timeout=30) as http:
            return http.post(
                provider.url("/allocation"),
                json={
                    "name": f"race-{n}",
                    "tenantId": me["id"],
                    "siteId": site["id"],
                    "allocationConstraints": [
                        {
                            "resourceType": "IPBlock",
                            "resourceTypeId": block["id"],
                            "constraintType": "Reserved",
                            "constraintValue": 28,
                        }
                    ],
                },
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(allocate, range(6)))
    assert statuses == [201, 201, 201, 201, 409, 409]  # a /26 holds four /28
    derived = listed(provider, f"/ipblock/{block['id']}/derived")
    assert sorted(d["prefix"] for d in derived) == ["10.9.0.0", "10.9.0.16", "10.9.0.32", "10.9.0.48"]


def test_unimplemented_operation_is_501_and_unknown_path_404(nico: Served) -> None:
    client = nico.client("acme", nico.token("acme", ["PROVIDER_ADMIN"]))
    body = error(client.call("GET", "/vpc-peering"), 501)
    assert body["data"] == {"operationId": "get-all-vpc-peering"}
    assert "get-all-vpc-peering" in body["message"]
    error(client.call("GET", "/no-such-resource"), 404)


def test_token_door_refuses_bad_bodies(nico: Served) -> None:
    error(nico.http.post("/v1/admin/keys", json={"org": "acme", "roles": ["ROOT"]}), 400)
    error(nico.http.post("/v1/admin/keys", json={"org": "acme"}), 400)


def test_upstream_mode_proxies_to_an_embedded_nico(serve: ServeFactory) -> None:
    embedded = serve(name="upstream")
    upstream_port = int(embedded.base.rsplit(":", 1)[1])
    with HeaderRelay(upstream_port, b"", b"") as relay:
        relay.old = f"Host: 127.0.0.1:{relay.port}\r\n".encode()
        relay.new = f"Host: {HOST}\r\n".encode()
        front = serve("--upstream", f"nico=http://127.0.0.1:{relay.port}", name="front")
        token = embedded.token("acme", ["PROVIDER_ADMIN"])  # the upstream's own issuer; the front only proxies
        via_front = front.client("acme", token)
        created = via_front.ok("POST", "/site", {"name": "via-proxy"}, 201)
        response = via_front.call("GET", "/site")
        assert response.headers["X-Pagination"] == '{"pageNumber":1,"pageSize":20,"total":1}'
        assert [s["id"] for s in response.json()] == [created["id"]]
        error(via_front.call("GET", "/vpc-peering"), 501)
    assert embedded.client("acme", token).ok("GET", f"/site/{created['id']}")["name"] == "via-proxy"


def test_nul_characters_are_refused_not_stored(nico: Served) -> None:
    """PostgreSQL text cannot hold NUL: such names and ids are 400/404, never a 500."""
    client = nico.client("acme", nico.token("acme", ["PROVIDER_ADMIN"]))
    error(client.call("POST", "/site", {"name": "bad\x00name"}), 400)
    error(client.call("GET", "/machine/fm100h%00"), 404)
    assert listed(client, "/site") == []


PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3cK8bnYz1sZ8m0Ry0m9q1h9Rr8a2Yx7mQe1v0f2Zb user@host"


def test_ssh_keys_groups_and_constraint_updates(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    itype = provider.ok("POST", "/instance/type", {"name": "type-1", "siteId": site["id"]}, 201)
    machines = listed(provider, "/machine")
    provider.ok("POST", f"/instance/type/{itype['id']}/machine", {"machineIds": [m["id"] for m in machines[:2]]}, 201)
    compute = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "compute",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "InstanceType",
                    "resourceTypeId": itype["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 1,
                }
            ],
        },
        201,
    )
    constraint = compute["allocationConstraints"][0]
    url = f"/allocation/{compute['id']}/constraint/{constraint['id']}"
    raised = provider.ok("PATCH", url, {"constraintValue": 2})
    assert raised["allocationConstraints"][0]["constraintValue"] == 2
    error(provider.call("PATCH", url, {"constraintValue": 3}), 409)  # only two machines assigned
    error(tenant.call("PATCH", url, {"constraintValue": 1}), 403)

    group = tenant.ok("POST", "/sshkeygroup", {"name": "ops", "siteIds": [site["id"]]}, 201)
    assert group["status"] == "Synced" and group["siteAssociations"][0]["site"]["id"] == site["id"]
    key = tenant.ok("POST", "/sshkey", {"name": "laptop", "publicKey": PUBLIC_KEY, "sshKeyGroupId": group["id"]}, 201)
    assert key["fingerprint"].startswith("SHA256:")
    refreshed = tenant.ok("GET", f"/sshkeygroup/{group['id']}")
    assert [k["id"] for k in refreshed["sshKeys"]] == [key["id"]] and refreshed["version"] != group["version"]
    assert error(
        tenant.call("PATCH", f"/sshkeygroup/{group['id']}", {"name": "ops2", "version": group["version"]}), 400
    )["data"] == {"version": "stale"}
    renamed = tenant.ok("PATCH", f"/sshkeygroup/{group['id']}", {"name": "ops2", "version": refreshed["version"]})
    assert renamed["name"] == "ops2"
    assert (
        "publicKey" in error(tenant.call("POST", "/sshkey", {"name": "bad", "publicKey": "ssh-dss AAAA"}), 400)["data"]
    )
    assert [k["id"] for k in listed(tenant, "/sshkey", sshKeyGroupId=group["id"])] == [key["id"]]
    assert tenant.call("DELETE", f"/sshkey/{key['id']}").status_code == 202
    assert tenant.ok("GET", f"/sshkeygroup/{group['id']}")["sshKeys"] == []
    assert tenant.call("DELETE", f"/sshkeygroup/{group['id']}").status_code == 202
    assert listed(tenant, "/sshkeygroup") == [] and listed(tenant, "/sshkey") == []


def test_ssh_key_with_bad_base64_is_400(nico: Served) -> None:
    """Found by the conformance fuzzing: a key blob that is not base64 was a 500."""
    tenant = nico.client("acme", nico.token("acme", ["TENANT_ADMIN"]))
    assert error(tenant.call("POST", "/sshkey", {"name": "bad", "publicKey": "ssh-rsa AAAAB"}), 400)["data"] == {
        "publicKey": "is not a valid SSH public key"
    }
    assert listed(tenant, "/sshkey") == []


def test_stats_and_vpc_virtualization(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico, native=True)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "v-blk",
            "siteId": site["id"],
            "routingType": "Public",
            "prefix": "10.7.0.0",
            "prefixLength": 24,
            "protocolVersion": "IPv4",
        },
        201,
    )
    provider.ok(
        "POST",
        "/allocation",
        {
            "name": "v-net",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "IPBlock",
                    "resourceTypeId": block["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 25,
                }
            ],
        },
        201,
    )
    stats = provider.ok("GET", "/infrastructure-provider/current/stats")
    assert stats["machine"] == {
        "total": 4,
        "initializing": 0,
        "reset": 0,
        "assigned": 0,
        "ready": 4,
        "error": 0,
        "decommissioned": 0,
        "unknown": 0,
    }
    assert stats["ipBlock"]["total"] == 1 and stats["tenantAccount"] == {
        "total": 1,
        "pending": 0,
        "invited": 0,
        "ready": 1,
        "error": 0,
    }
    error(tenant.call("GET", "/infrastructure-provider/current/stats"), 403)
    vpc = tenant.ok(
        "POST", "/vpc", {"name": "eth", "siteId": site["id"], "networkVirtualizationType": "ETHERNET_VIRTUALIZER"}, 201
    )
    assert tenant.ok("GET", "/tenant/current/stats")["vpc"] == {
        "total": 1,
        "pending": 0,
        "provisioning": 0,
        "ready": 1,
        "deleting": 0,
        "error": 0,
    }
    error(tenant.call("PATCH", f"/vpc/{vpc['id']}/virtualization", {"networkVirtualizationType": "FLAT"}), 400)
    changed = tenant.ok("PATCH", f"/vpc/{vpc['id']}/virtualization", {"networkVirtualizationType": "FNN"})
    assert changed["networkVirtualizationType"] == "FNN"


def test_concurrent_instances_respect_the_quota(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    itype = provider.ok("POST", "/instance/type", {"name": "quota", "siteId": site["id"]}, 201)
    machines = listed(provider, "/machine")
    provider.ok("POST", f"/instance/type/{itype['id']}/machine", {"machineIds": [m["id"] for m in machines]}, 201)
    provider.ok(
        "POST",
        "/allocation",
        {
            "name": "two",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "InstanceType",
                    "resourceTypeId": itype["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 2,
                }
            ],
        },
        201,
    )
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "q-blk",
            "siteId": site["id"],
            "routingType": "Public",
            "prefix": "10.8.0.0",
            "prefixLength": 24,
            "protocolVersion": "IPv4",
        },
        201,
    )
    net = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "q-net",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "IPBlock",
                    "resourceTypeId": block["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 24,
                }
            ],
        },
        201,
    )
    vpc = tenant.ok("POST", "/vpc", {"name": "q-vpc", "siteId": site["id"]}, 201)
    subnet = tenant.ok(
        "POST",
        "/subnet",
        {
            "name": "q-sub",
            "vpcId": vpc["id"],
            "prefixLength": 25,
            "ipv4BlockId": net["allocationConstraints"][0]["derivedResourceId"],
        },
        201,
    )

    def create(n: int) -> int:
        with httpx.Client(base_url=nico.base, headers={"Host": HOST, **tenant.headers}, timeout=30) as http:
            return http.post(
                tenant.url("/instance"),
                json={
                    "name": f"q-{n}",
                    "tenantId": me["id"],
                    "vpcId": vpc["id"],
                    "instanceTypeId": itype["id"],
                    "ipxeScript": "#!ipxe",
                    "interfaces": [{"subnetId": subnet["id"]}],
                },
            ).status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(pool.map(create, range(4)))
    assert statuses == [201, 201, 403, 403]  # four machines, but the allocation grants two
    instances = listed(tenant, "/instance")
    assert len(instances) == 2 and len({i["machineId"] for i in instances}) == 2
