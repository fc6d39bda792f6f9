"""The seed's three NICo call flows end to end against a real ``cfgate serve`` (SQLite and
PostgreSQL): every object created is read back and listed, then everything is torn down."""

from __future__ import annotations

import json
from typing import Any

from tests.nico.conftest import NicoClient, Served

IPXE = "#!ipxe\nchain http://boot.example/ipxe"


def listed(client: NicoClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = client.call("GET", path, **params)
    assert response.status_code == 200, response.text
    page = json.loads(response.headers["X-Pagination"])
    items: list[dict[str, Any]] = response.json()
    assert page["total"] == len(items) or page["total"] > page["pageSize"]
    return items


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def test_service_account_flow(nico: Served) -> None:
    sa = nico.client("colo", nico.token("colo", service_account=True))
    account = sa.ok("GET", "/service-account/current")
    assert account["enabled"] is True
    provider_id, tenant_id = account["infrastructureProviderId"], account["tenantId"]
    assert sa.ok("GET", "/tenant/current")["capabilities"] == {"targetedInstanceCreation": True}
    assert sa.ok("GET", "/infrastructure-provider/current")["id"] == provider_id
    accounts = listed(sa, "/tenant/account", infrastructureProviderId=provider_id)
    assert [a["status"] for a in accounts] == ["Ready"]

    sites = listed(sa, "/site")
    assert len(sites) == 1  # co-located: exactly one
    site = sa.wait_for(f"/site/{sites[0]['id']}", "Registered")
    assert [h["status"] for h in sa.ok("GET", f"/site/{site['id']}/status-history")] == ["Registered", "Pending"]

    block = sa.ok(
        "POST",
        "/ipblock",
        {
            "name": "overlay-a",
            "siteId": site["id"],
            "routingType": "DatacenterOnly",
            "prefix": "10.100.0.0",
            "prefixLength": 16,
            "protocolVersion": "IPv4",
        },
        201,
    )
    assert block["status"] == "Ready" and block["tenantId"] is None
    for root in [b for b in listed(sa, "/ipblock") if b["tenantId"] is None]:
        allocation = sa.ok(
            "POST",
            "/allocation",
            {
                "name": f"net-{root['name']}",
                "tenantId": tenant_id,
                "siteId": site["id"],
                "allocationConstraints": [
                    {
                        "resourceType": "IPBlock",
                        "resourceTypeId": root["id"],
                        "constraintType": "Reserved",
                        "constraintValue": root["prefixLength"],
                    }
                ],
            },
            201,
        )
    assert allocation["status"] == "Registered"
    derived_id = allocation["allocationConstraints"][0]["derivedResourceId"]
    tenant_block = sa.ok("GET", f"/ipblock/{derived_id}")
    assert (tenant_block["tenantId"], tenant_block["prefix"], tenant_block["prefixLength"]) == (
        tenant_id,
        "10.100.0.0",
        16,
    )
    assert ids(sa.ok("GET", f"/ipblock/{block['id']}/derived")) == {derived_id}
    assert allocation["id"] in ids(listed(sa, "/allocation"))

    vpc = sa.ok("POST", "/vpc", {"name": "vpc-1", "siteId": site["id"]}, 201)
    assert (vpc["status"], vpc["networkVirtualizationType"]) == ("Ready", "ETHERNET_VIRTUALIZER")
    subnet = sa.ok(
        "POST", "/subnet", {"name": "subnet-1", "vpcId": vpc["id"], "ipv4BlockId": derived_id, "prefixLength": 24}, 201
    )
    assert (subnet["ipv4Prefix"], subnet["ipv4Gateway"], subnet["status"]) == ("10.100.0.0", "10.100.0.1", "Ready")
    assert sa.ok("GET", f"/subnet/{subnet['id']}")["id"] == subnet["id"]
    assert ids(listed(sa, "/subnet", vpcId=vpc["id"])) == {subnet["id"]}
    os_ = sa.ok(
        "POST", "/operating-system", {"name": "ubuntu-ipxe", "ipxeScript": IPXE, "userData": "#cloud-config"}, 201
    )
    assert (os_["type"], os_["status"]) == ("iPXE", "Ready")
    assert os_["id"] in ids(listed(sa, "/operating-system"))

    machines = listed(sa, "/machine", siteId=site["id"])
    assert len(machines) == 4 and {m["status"] for m in machines} == {"Ready"}
    target = machines[0]["id"]
    instance = sa.ok(
        "POST",
        "/instance",
        {
            "name": "node-1",
            "tenantId": tenant_id,
            "vpcId": vpc["id"],
            "machineId": target,
            "operatingSystemId": os_["id"],
            "interfaces": [{"subnetId": subnet["id"], "isPhysical": True}],
        },
        201,
    )
    assert (instance["status"], instance["machineId"]) == ("Pending", target)
    ready = sa.wait_for(f"/instance/{instance['id']}", "Ready")
    assert [h["status"] for h in ready["statusHistory"]] == ["Ready", "Provisioning", "Pending"]
    assert sa.ok("GET", f"/machine/{target}")["status"] == "InUse"
    assert ids(listed(sa, "/instance")) == {instance["id"]}

    # Tear down, innermost first.
    assert sa.call("DELETE", f"/instance/{instance['id']}").status_code == 202
    sa.wait_gone(f"/instance/{instance['id']}")
    assert sa.ok("GET", f"/machine/{target}")["status"] == "Ready"
    assert sa.call("DELETE", f"/operating-system/{os_['id']}").status_code == 202
    # As the real handlers answer (nicocli prints the line): 202 text/plain, subnets too.
    deleted = sa.call("DELETE", f"/subnet/{subnet['id']}")
    assert (deleted.status_code, deleted.headers["content-type"].split(";")[0], deleted.text) == (
        202,
        "text/plain",
        "Deletion request was accepted",
    )
    assert sa.call("DELETE", f"/vpc/{vpc['id']}").status_code == 202
    assert sa.call("DELETE", f"/allocation/{allocation['id']}").status_code == 202
    assert sa.call("GET", f"/ipblock/{derived_id}").status_code == 404
    assert sa.call("DELETE", f"/ipblock/{block['id']}").status_code == 202
    assert sa.call("DELETE", f"/site/{site['id']}").status_code == 202
    for path in ("/site", "/ipblock", "/allocation", "/vpc", "/subnet", "/operating-system", "/instance", "/machine"):
        assert listed(sa, path) == [], path


def provider_setup(nico: Served, native: bool = False) -> tuple[NicoClient, NicoClient, dict[str, Any]]:
    """Provider flow: provider, invited tenant account, a Registered site with machines."""
    provider = nico.client("acme-provider", nico.token("acme-provider", ["PROVIDER_ADMIN"], sub="prov@acme"))
    tenant = nico.client("bolt-tenant", nico.token("bolt-tenant", ["TENANT_ADMIN"], sub="admin@bolt"))
    me = provider.ok("GET", "/infrastructure-provider/current")
    account = provider.ok(
        "POST", "/tenant/account", {"infrastructureProviderId": me["id"], "tenantOrg": "bolt-tenant"}, 201
    )
    assert (account["status"], account["tenantId"]) == ("Invited", None)
    site = provider.ok("POST", "/site", {"name": "sjc-1", "description": "test site"}, 201)
    assert site["status"] == "Pending" and site["registrationToken"]
    site = provider.wait_for(f"/site/{site['id']}", "Registered")
    if native:
        site = provider.ok("PATCH", f"/site/{site['id']}", {"capabilities": {"nativeNetworking": True}})
    return provider, tenant, {"provider": me, "account": account, "site": site}


def test_provider_and_tenant_flows(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico)
    site, account = ctx["site"], ctx["account"]
    assert ids(listed(provider, "/site")) == {site["id"]}
    assert provider.ok("GET", f"/tenant/account/{account['id']}")["status"] == "Invited"

    # Tenant accepts: Invited → Ready, the caller becomes the contact.
    me = tenant.ok("GET", "/tenant/current")
    assert me["capabilities"]["targetedInstanceCreation"] is False
    accepted = tenant.ok("PATCH", f"/tenant/account/{account['id']}", {})
    assert (accepted["status"], accepted["tenantId"]) == ("Ready", me["id"])
    assert ids(listed(tenant, "/tenant/account", tenantId=me["id"])) == {account["id"]}
    assert listed(tenant, "/site") == []  # no allocation yet

    itype = provider.ok(
        "POST",
        "/instance/type",
        {
            "name": "h100x8",
            "siteId": site["id"],
            "machineCapabilities": [{"type": "GPU", "name": "NVIDIA H100 80GB HBM3", "count": 8}],
        },
        201,
    )
    machines = listed(provider, "/machine", siteId=site["id"])
    assert len(machines) == 4
    assoc = provider.ok(
        "POST", f"/instance/type/{itype['id']}/machine", {"machineIds": [m["id"] for m in machines[:2]]}, 201
    )
    assert {a["machineId"] for a in assoc} == {m["id"] for m in machines[:2]}
    provider.ok("PATCH", f"/machine/{machines[2]['id']}", {"instanceTypeId": itype["id"]})
    assert len(listed(provider, f"/instance/type/{itype['id']}/machine")) == 3
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "public-a",
            "siteId": site["id"],
            "routingType": "Public",
            "prefix": "192.168.0.0",
            "prefixLength": 20,
            "protocolVersion": "IPv4",
        },
        201,
    )
    compute = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "bolt-compute",
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
    network = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "bolt-net",
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
    tenant_block_id = network["allocationConstraints"][0]["derivedResourceId"]
    assert (
        provider.ok("GET", f"/tenant/account/{account['id']}", infrastructureProviderId=ctx["provider"]["id"])[
            "allocationCount"
        ]
        == 2
    )

    # Tenant flow.
    assert ids(listed(tenant, "/site")) == {site["id"]}
    assert ids(listed(tenant, "/ipblock")) == {tenant_block_id}
    assert ids(listed(tenant, "/instance/type")) == {itype["id"]}
    assert ids(listed(tenant, "/allocation")) == {compute["id"], network["id"]}
    vpc = tenant.ok("POST", "/vpc", {"name": "bolt-vpc", "siteId": site["id"]}, 201)
    subnet = tenant.ok(
        "POST",
        "/subnet",
        {"name": "bolt-subnet", "vpcId": vpc["id"], "ipv4BlockId": tenant_block_id, "prefixLength": 26},
        201,
    )
    os_ = tenant.ok("POST", "/operating-system", {"name": "bolt-os", "ipxeScript": IPXE}, 201)
    instance = tenant.ok(
        "POST",
        "/instance",
        {
            "name": "bolt-node",
            "tenantId": me["id"],
            "vpcId": vpc["id"],
            "instanceTypeId": itype["id"],
            "operatingSystemId": os_["id"],
            "interfaces": [{"subnetId": subnet["id"]}],
        },
        201,
    )
    tenant.wait_for(f"/instance/{instance['id']}", "Ready")
    assert instance["machineId"] in {m["id"] for m in machines[:3]}
    assert ids(listed(tenant, "/machine")) == {instance["machineId"]}  # the machine behind its instance
    rebooting = tenant.ok("PATCH", f"/instance/{instance['id']}", {"triggerReboot": True})
    assert rebooting["status"] == "Rebooting"
    assert tenant.wait_for(f"/instance/{instance['id']}", "Ready")["statusHistory"][1]["status"] == "Rebooting"
    mixed = tenant.call("PATCH", f"/instance/{instance['id']}", {"triggerReboot": True, "name": "renamed"})
    assert mixed.status_code == 400 and "triggerReboot" in mixed.json()["data"]
    # Targeted creation needs the privileged capability.
    refused = tenant.call(
        "POST",
        "/instance",
        {
            "name": "bolt-node-2",
            "tenantId": me["id"],
            "vpcId": vpc["id"],
            "machineId": machines[3]["id"],
            "operatingSystemId": os_["id"],
            "interfaces": [{"subnetId": subnet["id"]}],
        },
    )
    assert refused.status_code == 403 and refused.json()["source"] == "nico"

    # Tear down.
    assert tenant.call("DELETE", f"/instance/{instance['id']}").status_code == 202
    tenant.wait_gone(f"/instance/{instance['id']}")
    assert tenant.call("DELETE", f"/subnet/{subnet['id']}").status_code == 202
    assert tenant.call("DELETE", f"/vpc/{vpc['id']}").status_code == 202
    assert tenant.call("DELETE", f"/operating-system/{os_['id']}").status_code == 202
    for allocation in (compute, network):
        assert provider.call("DELETE", f"/allocation/{allocation['id']}").status_code == 202
    assert provider.call("DELETE", f"/instance/type/{itype['id']}/machine/{machines[0]['id']}").status_code == 202
    assert provider.call("DELETE", f"/instance/type/{itype['id']}").status_code == 202
    assert provider.call("DELETE", f"/ipblock/{block['id']}").status_code == 202
    assert provider.call("DELETE", f"/tenant/account/{account['id']}").status_code == 202
    assert provider.call("DELETE", f"/site/{site['id']}").status_code == 202
    for path in ("/site", "/ipblock", "/allocation", "/instance/type", "/machine"):
        assert listed(provider, path) == [], path
    assert listed(tenant, "/vpc") == [] and listed(tenant, "/instance") == []


def test_fnn_site_uses_vpc_prefixes(nico: Served) -> None:
    provider, tenant, ctx = provider_setup(nico, native=True)
    site = ctx["site"]
    me = tenant.ok("GET", "/tenant/current")
    tenant.ok("PATCH", f"/tenant/account/{ctx['account']['id']}", {})
    block = provider.ok(
        "POST",
        "/ipblock",
        {
            "name": "fnn-a",
            "siteId": site["id"],
            "routingType": "DatacenterOnly",
            "prefix": "172.16.0.0",
            "prefixLength": 22,
            "protocolVersion": "IPv4",
        },
        201,
    )
    network = provider.ok(
        "POST",
        "/allocation",
        {
            "name": "fnn-net",
            "tenantId": me["id"],
            "siteId": site["id"],
            "allocationConstraints": [
                {
                    "resourceType": "IPBlock",
                    "resourceTypeId": block["id"],
                    "constraintType": "Reserved",
                    "constraintValue": 23,
                }
            ],
        },
        201,
    )
    tenant_block = network["allocationConstraints"][0]["derivedResourceId"]
    vpc = tenant.ok("POST", "/vpc", {"name": "fnn-vpc", "siteId": site["id"]}, 201)
    assert vpc["networkVirtualizationType"] == "FNN"
    first = tenant.ok(
        "POST", "/vpc-prefix", {"name": "p1", "vpcId": vpc["id"], "ipBlockId": tenant_block, "prefixLength": 24}, 201
    )
    second = tenant.ok(
        "POST", "/vpc-prefix", {"name": "p2", "vpcId": vpc["id"], "ipBlockId": tenant_block, "prefixLength": 24}, 201
    )
    assert {first["prefix"], second["prefix"]} == {"172.16.0.0/24", "172.16.1.0/24"}
    assert ids(listed(tenant, "/vpc-prefix")) == {first["id"], second["id"]}
    stats = tenant.ok("GET", f"/ipblock/{tenant_block}", includeUsageStats="true")["usageStats"]
    assert (stats["acquiredPrefixes"], stats["availablePrefixes"]) == (2, [])
    assert tenant.call("DELETE", f"/vpc-prefix/{first['id']}").status_code == 202
    third = tenant.ok(
        "POST", "/vpc-prefix", {"name": "p3", "vpcId": vpc["id"], "ipBlockId": tenant_block, "prefixLength": 24}, 201
    )
    assert third["prefix"] == "172.16.0.0/24"  # released on delete, handed out again
