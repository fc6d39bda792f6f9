"""IP blocks, allocations (compute and network), VPCs, VPC prefixes and subnets — and the IPAM
carving that ties them: tenant blocks from site blocks, subnets and VPC prefixes from tenant blocks."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.services.nico import ipam
from gateway.services.nico.accepted import deletion_accepted
from gateway.services.nico.context import (
    Nico,
    listing,
    new_id,
    not_found,
    one,
    owned,
    path_id,
    pick,
    provider_of,
    provider_side,
    query_filter,
    query_uuid,
    tenant_of,
    tenant_side,
)
from gateway.services.nico.errors import BadRequest, Conflict, Forbidden
from gateway.services.nico.roles import PROVIDER_ADMIN, PROVIDER_ROLES, TENANT_ADMIN, Caller
from gateway.services.nico.store import Obj, Tx
from gateway.services.nico.validation import Fields

IPBLOCK_ORDER = ("name", "prefix", "status", "created", "updated")
VNI_BASE = 10_000


def _net(obj: Obj) -> ipam.Network:
    return ipaddress.ip_network(f"{obj.doc['prefix']}/{obj.doc['prefixLength']}")


async def carve(tx: Tx, pool: Obj, length: int, owner_id: str) -> ipam.Network | None:
    """A free /length of ``pool`` recorded for ``owner_id``; the pool row lock makes it race-free."""
    await tx.lock(pool.id)
    taken = [ipaddress.ip_network(cidr) for _, cidr in await tx.prefixes(pool.id)]
    child = ipam.carve(_net(pool), length, taken)
    if child is not None:
        await tx.add_prefix(owner_id, pool.id, str(child))
    return child


async def _usage(tx: Tx, block: Obj) -> dict[str, Any]:
    taken = [ipaddress.ip_network(cidr) for _, cidr in await tx.prefixes(block.id)]
    return ipam.usage(_net(block), taken)


# --- IP blocks ------------------------------------------------------------------------------------


async def create_ipblock(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    site_id = fields.uuid("siteId", required=True)
    routing = fields.enum("routingType", ("Public", "DatacenterOnly"), required=True)
    version = fields.enum("protocolVersion", ("IPv4", "IPv6"), required=True)
    prefix = fields.string("prefix", required=True, max_len=64)
    length = fields.integer("prefixLength", required=True, lo=1, hi=128)
    net: ipam.Network | None = None
    if prefix is not None and length is not None and version is not None:
        highest = 32 if version == "IPv4" else 128
        try:
            net = ipam.network(prefix, length)
        except ipam.PrefixError as exc:
            fields.errors["prefix"] = str(exc)
        else:
            if (net.version == 4) != (version == "IPv4"):
                fields.errors["protocolVersion"] = "does not match the prefix"
            elif length > highest:
                fields.errors["prefixLength"] = f"must be between 1 and {highest}"
    fields.check("IP Block creation request")
    assert net is not None
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        site = await tx.get("site", str(site_id))
        if site is None or site.provider_id != provider.id:
            raise BadRequest(
                "Site specified in request does not exist or belongs to another provider", {"siteId": "unknown Site"}
            )
        await tx.lock(site.id)
        for other in await tx.find("ipblock", site_id=site.id, tenant_id=None):
            if ipam.overlaps(net, [_net(other)]):
                raise Conflict("IP Block prefix overlaps an existing IP Block on the Site", {"id": other.id})
        block = Obj(
            id=new_id(),
            kind="ipblock",
            org=provider.org,
            status="Ready",
            provider_id=provider.id,
            site_id=site.id,
            name=name,
            unique_key=f"ipblock:{site.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "siteId": site.id,
                "infrastructureProviderId": provider.id,
                "tenantId": None,
                "routingType": routing,
                "prefix": str(net.network_address),
                "prefixLength": net.prefixlen,
                "protocolVersion": version,
            },
        )
        await tx.insert(block, "IP Block is ready for use")
        return await one(tx, block, 201)


async def _visible_blocks(tx: Tx, caller: Caller) -> list[Obj]:
    found: dict[str, Obj] = {}
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        found.update({b.id: b for b in await tx.find("ipblock", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        tenant = await tenant_of(tx, caller)
        found.update({b.id: b for b in await tx.find("ipblock", tenant_id=tenant.id)})
    return list(found.values())


async def _with_usage(tx: Tx, request: Request, blocks: list[Obj]) -> list[Obj]:
    if request.query_params.get("includeUsageStats") == "true":
        for block in blocks:
            block.doc = {**block.doc, "usageStats": await _usage(tx, block)}
    return blocks


async def list_ipblocks(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    for name in ("siteId", "tenantId", "infrastructureProviderId"):
        query_uuid(request, name)
    async with nico.store.write() as tx:
        blocks = query_filter(
            await _visible_blocks(tx, caller),
            request,
            siteId=lambda o: o.site_id,
            tenantId=lambda o: o.tenant_id,
            status=lambda o: o.status,
        )
        return await listing(request, tx, await _with_usage(tx, request, blocks), IPBLOCK_ORDER)


async def _visible_block(tx: Tx, caller: Caller, block_id: str) -> Obj:
    return pick(await _visible_blocks(tx, caller), block_id, "IP Block")


async def get_ipblock(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    block_id = path_id(request, "ipBlockId", "IP Block")
    async with nico.store.write() as tx:
        block = await _visible_block(tx, caller, block_id)
        return await one(tx, (await _with_usage(tx, request, [block]))[0])


async def list_derived_ipblocks(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    block_id = path_id(request, "ipBlockId", "IP Block")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=False)
        root = await owned(tx, "ipblock", block_id, "IP Block", provider_id=provider.id)
        return await listing(request, tx, await tx.find("ipblock", parent_id=root.id), IPBLOCK_ORDER)


async def update_ipblock(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    block_id = path_id(request, "ipBlockId", "IP Block")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    fields.check("IP Block update request")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        block = await owned(tx, "ipblock", block_id, "IP Block", provider_id=provider.id, tenant_id=None)
        if name is not None:
            block.name, block.unique_key = name, f"ipblock:{block.site_id}:{name}"
            block.doc = {**block.doc, "name": name}
        if description is not None:
            block.doc = {**block.doc, "description": description}
        await tx.save(block)
        return await one(tx, block)


async def delete_ipblock(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    block_id = path_id(request, "ipBlockId", "IP Block")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        block = await owned(tx, "ipblock", block_id, "IP Block", provider_id=provider.id)
        if block.tenant_id is not None:
            raise BadRequest("Tenant IP Blocks are deleted with their Allocation")
        if await tx.count("ipblock", parent_id=block.id):
            raise BadRequest("IP Block is referenced by Allocations which must be deleted first")
        await tx.remove(block.id)
    return deletion_accepted()


# --- allocations ----------------------------------------------------------------------------------


def _constraint(fields: Fields) -> dict[str, Any] | None:
    items = fields.array("allocationConstraints", required=True)
    if items is None:
        return None
    if len(items) != 1 or not isinstance(items[0], dict):
        fields.errors["allocationConstraints"] = "exactly one constraint is required"
        return None
    inner = Fields(items[0])
    kind = inner.enum("resourceType", ("InstanceType", "IPBlock"), required=True)
    resource = inner.uuid("resourceTypeId", required=True)
    ctype = inner.enum("constraintType", ("Reserved", "OnDemand", "Preemptible"), required=True)
    value = inner.integer("constraintValue", required=True, lo=1, hi=1 << 20)
    if ctype is not None and ctype != "Reserved":
        inner.errors["constraintType"] = "only Reserved is supported"
    if inner.errors:
        fields.errors["allocationConstraints"] = "; ".join(f"{k}: {v}" for k, v in inner.errors.items())
        return None
    return {"resourceType": kind, "resourceTypeId": resource, "constraintType": ctype, "constraintValue": value}


async def _allocated_machines(tx: Tx, type_id: str) -> int:
    return sum(
        c["constraintValue"]
        for a in await tx.find("allocation", status="Registered")
        for c in a.doc["allocationConstraints"]
        if c["resourceType"] == "InstanceType" and c["resourceTypeId"] == type_id
    )


async def create_allocation(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    tenant_id = fields.uuid("tenantId", required=True)
    site_id = fields.uuid("siteId", required=True)
    constraint = _constraint(fields)
    fields.check("Allocation creation request")
    assert constraint is not None and site_id is not None and tenant_id is not None
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        site = await tx.get("site", site_id)
        if site is None or site.provider_id != provider.id:
            raise BadRequest(
                "Site specified in request does not exist or belongs to another provider", {"siteId": "unknown Site"}
            )
        if not await tx.find("tenant_account", provider_id=provider.id, tenant_id=tenant_id):
            raise BadRequest(
                "Tenant does not have a Tenant Account with the Infrastructure Provider",
                {"tenantId": "no Tenant Account with this provider"},
            )
        tenant = await tx.get("tenant", tenant_id)
        assert tenant is not None
        allocation_id = new_id()
        now_constraint: dict[str, Any] = {
            "id": new_id(),
            "allocationId": allocation_id,
            **constraint,
            "derivedResourceId": None,
        }
        value = constraint["constraintValue"]
        if constraint["resourceType"] == "InstanceType":
            itype = await tx.get("instance_type", constraint["resourceTypeId"])
            if itype is None or itype.provider_id != provider.id or itype.site_id != site.id:
                raise BadRequest(
                    "Instance Type does not exist on this Site", {"allocationConstraints": "unknown Instance Type"}
                )
            await tx.lock(itype.id)
            assigned = await tx.count("machine", parent_id=itype.id)
            if assigned - await _allocated_machines(tx, itype.id) < value:
                raise Conflict("Allocation Constraint value cannot be satisfied due to machine availability")
            now_constraint["instanceType"] = {
                "id": itype.id,
                "name": itype.name,
                "infrastructureProviderId": provider.id,
                "siteId": site.id,
                "status": itype.status,
            }
        else:
            root = await tx.get("ipblock", constraint["resourceTypeId"])
            if root is None or root.provider_id != provider.id or root.site_id != site.id or root.tenant_id:
                raise BadRequest("IP Block does not exist on this Site", {"allocationConstraints": "unknown IP Block"})
            block_id = new_id()
            child = await carve(tx, root, value, block_id)
            if child is None:
                raise Conflict("Could not create child IPAM entry for the Allocation: no free prefix of that length")
            derived = Obj(
                id=block_id,
                kind="ipblock",
                org=tenant.org,
                status="Ready",
                provider_id=provider.id,
                tenant_id=tenant.id,
                site_id=site.id,
                parent_id=root.id,
                name=root.name,
                doc={
                    **root.doc,
                    "tenantId": tenant.id,
                    "prefix": str(child.network_address),
                    "prefixLength": child.prefixlen,
                    "allocationId": allocation_id,
                },
            )
            await tx.insert(derived, "IP Block is ready for use")
            now_constraint["derivedResourceId"] = block_id
            now_constraint["ipBlock"] = {
                "id": root.id,
                "name": root.name,
                "routingType": root.doc["routingType"],
                "prefix": root.doc["prefix"],
                "prefixLength": root.doc["prefixLength"],
                "status": root.status,
            }
        allocation = Obj(
            id=allocation_id,
            kind="allocation",
            org=provider.org,
            status="Registered",
            provider_id=provider.id,
            tenant_id=tenant.id,
            site_id=site.id,
            name=name,
            unique_key=f"allocation:{tenant.id}:{site.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "infrastructureProviderId": provider.id,
                "tenantId": tenant.id,
                "siteId": site.id,
                "allocationConstraints": [now_constraint],
            },
        )
        await tx.insert(allocation, "Allocation has been registered")
        return await one(tx, allocation, 201)


async def _visible_allocations(tx: Tx, caller: Caller) -> list[Obj]:
    found: dict[str, Obj] = {}
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        found.update({a.id: a for a in await tx.find("allocation", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        tenant = await tenant_of(tx, caller)
        found.update({a.id: a for a in await tx.find("allocation", tenant_id=tenant.id)})
    return list(found.values())


async def list_allocations(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    for name in ("siteId", "tenantId", "infrastructureProviderId"):
        query_uuid(request, name)
    async with nico.store.write() as tx:
        allocations = query_filter(
            await _visible_allocations(tx, caller),
            request,
            siteId=lambda o: o.site_id,
            tenantId=lambda o: o.tenant_id,
            status=lambda o: o.status,
            id=lambda o: o.id,
        )
        return await listing(request, tx, allocations)


async def _visible_allocation(tx: Tx, caller: Caller, allocation_id: str) -> Obj:
    return pick(await _visible_allocations(tx, caller), allocation_id, "Allocation")


async def get_allocation(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    allocation_id = path_id(request, "allocationId", "Allocation")
    async with nico.store.write() as tx:
        return await one(tx, await _visible_allocation(tx, caller, allocation_id))


async def update_allocation(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    allocation_id = path_id(request, "allocationId", "Allocation")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    fields.check("Allocation update request")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        allocation = await owned(tx, "allocation", allocation_id, "Allocation", provider_id=provider.id)
        if name is not None:
            allocation.name = name
            allocation.unique_key = f"allocation:{allocation.tenant_id}:{allocation.site_id}:{name}"
            allocation.doc = {**allocation.doc, "name": name}
        if description is not None:
            allocation.doc = {**allocation.doc, "description": description}
        await tx.save(allocation)
        return await one(tx, allocation)


async def update_allocation_constraint(nico: Nico, request: Request) -> Response:
    """Compute: raise while machines are free, never below the tenant's active instances.
    Network: fixed while the tenant uses addresses of the derived block."""
    caller = await nico.caller(request)
    allocation_id = path_id(request, "allocationId", "Allocation")
    constraint_id = path_id(request, "allocationConstraintId", "Allocation Constraint")
    fields = Fields(await nico.body(request))
    value = fields.integer("constraintValue", required=True, lo=1, hi=1 << 20)
    fields.check("Allocation Constraint update request")
    assert value is not None
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        allocation = await owned(tx, "allocation", allocation_id, "Allocation", provider_id=provider.id)
        constraints = allocation.doc["allocationConstraints"]
        constraint = next((c for c in constraints if c["id"] == constraint_id), None)
        if constraint is None:
            raise not_found("Allocation Constraint")
        if constraint["resourceType"] == "InstanceType":
            type_id = constraint["resourceTypeId"]
            await tx.lock(type_id)
            free = await tx.count("machine", parent_id=type_id) - await _allocated_machines(tx, type_id)
            if value - constraint["constraintValue"] > free:
                raise Conflict("Allocation Constraint value cannot be satisfied due to machine availability")
            active = sum(
                1
                for i in await tx.find("instance", tenant_id=allocation.tenant_id)
                if i.doc.get("instanceTypeId") == type_id
            )
            others = await _tenant_type_total(tx, str(allocation.tenant_id), type_id, allocation.id)
            if others + value < active:
                raise BadRequest("Allocation Constraint value cannot go below the Tenant's active Instances")
        elif value != constraint["constraintValue"]:
            derived = constraint.get("derivedResourceId")
            if derived and await tx.prefixes(derived):
                raise BadRequest("IP Block Allocation Constraint cannot change while the Tenant uses its addresses")
            root = await tx.get("ipblock", constraint["resourceTypeId"])
            block = await tx.get("ipblock", str(derived)) if derived else None
            assert root is not None and block is not None
            await tx.lock(root.id)
            prefixes = [(o, c) for o, c in await tx.prefixes(root.id) if o != block.id]
            await tx.release_prefix(block.id)
            child = ipam.carve(_net(root), value, [ipaddress.ip_network(c) for _, c in prefixes])
            if child is None:
                raise Conflict("Could not create child IPAM entry for the Allocation: no free prefix of that length")
            await tx.add_prefix(block.id, root.id, str(child))
            block.doc = {**block.doc, "prefix": str(child.network_address), "prefixLength": child.prefixlen}
            await tx.save(block)
        constraint["constraintValue"] = value
        allocation.doc = {**allocation.doc, "allocationConstraints": constraints}
        await tx.save(allocation)
        return await one(tx, allocation)


async def _tenant_type_total(tx: Tx, tenant_id: str, type_id: str, excluding: str) -> int:
    return sum(
        c["constraintValue"]
        for a in await tx.find("allocation", tenant_id=tenant_id)
        if a.id != excluding
        for c in a.doc["allocationConstraints"]
        if c["resourceTypeId"] == type_id
    )


async def delete_allocation(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    allocation_id = path_id(request, "allocationId", "Allocation")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        allocation = await owned(tx, "allocation", allocation_id, "Allocation", provider_id=provider.id)
        await tx.lock(allocation.id)
        for constraint in allocation.doc["allocationConstraints"]:
            derived = constraint.get("derivedResourceId")
            if derived and await tx.prefixes(derived):
                raise BadRequest("Allocation has Subnets or VPC Prefixes which must be deleted first")
            if constraint["resourceType"] == "InstanceType":
                active = sum(
                    1
                    for i in await tx.find("instance", tenant_id=allocation.tenant_id)
                    if i.doc.get("instanceTypeId") == constraint["resourceTypeId"]
                )
                remaining = sum(
                    c["constraintValue"]
                    for a in await tx.find("allocation", tenant_id=allocation.tenant_id)
                    if a.id != allocation.id
                    for c in a.doc["allocationConstraints"]
                    if c["resourceTypeId"] == constraint["resourceTypeId"]
                )
                if active > remaining:
                    raise BadRequest("Allocation cannot be deleted while the Tenant's Instances use its machines")
        for constraint in allocation.doc["allocationConstraints"]:
            if constraint.get("derivedResourceId"):
                await tx.remove(constraint["derivedResourceId"])
        await tx.remove(allocation.id)
    return deletion_accepted()


# --- VPCs -----------------------------------------------------------------------------------------


async def _ready_site(tx: Tx, site_id: str, caller: Caller, tenant: Obj) -> Obj:
    site = await tx.get("site", site_id)
    if site is None:
        raise BadRequest("Site specified in request does not exist", {"siteId": "unknown Site"})
    if not await tx.count("allocation", tenant_id=tenant.id, site_id=site.id):
        raise Forbidden("Tenant does not have an Allocation at the Site")
    if site.status != "Registered":
        raise BadRequest(f"Site is not ready: its status is {site.status}")
    return site


async def create_vpc(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    fields = Fields(await nico.body(request))
    vpc_id = fields.uuid("id")
    name = fields.name()
    description = fields.description()
    site_id = fields.uuid("siteId", required=True)
    virtualization = fields.enum("networkVirtualizationType", ("ETHERNET_VIRTUALIZER", "FNN", "FLAT"))
    routing = fields.string("routingProfile", min_len=3, max_len=64)
    vni = fields.integer("vni", lo=1, hi=65535)
    labels = fields.labels()
    for unsupported in ("networkSecurityGroupId", "nvLinkLogicalPartitionId"):
        if fields.present(unsupported):
            fields.errors[unsupported] = "is not supported by the embedded site"
    fields.check("VPC creation request")
    assert site_id is not None
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        site = await _ready_site(tx, site_id, caller, tenant)
        native = bool(site.doc["capabilities"].get("nativeNetworking"))
        kind = virtualization or ("FNN" if native else "ETHERNET_VIRTUALIZER")
        if kind == "FNN" and not native:
            raise BadRequest(
                "FNN virtualization needs a Site with native networking",
                {"networkVirtualizationType": "site does not support FNN"},
            )
        if routing is not None and (kind != "FNN" or not tenant.doc["capabilities"]["targetedInstanceCreation"]):
            raise BadRequest(
                "routingProfile needs a privileged Tenant and an FNN VPC", {"routingProfile": "not allowed"}
            )
        new = vpc_id or new_id()
        if await tx.get("vpc", new):
            raise Conflict("VPC with the specified ID already exists", {"id": new})
        count = await tx.count("vpc", site_id=site.id)
        vpc = Obj(
            id=new,
            kind="vpc",
            org=caller.org,
            status="Provisioning",
            tenant_id=tenant.id,
            site_id=site.id,
            name=name,
            unique_key=f"vpc:{tenant.id}:{site.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "org": caller.org,
                "tenantId": tenant.id,
                "siteId": site.id,
                "controllerVpcId": new,
                "networkVirtualizationType": kind,
                "routingProfile": routing,
                "requestedVni": vni,
                "vni": vni or VNI_BASE + count + 1,
                "networkSecurityGroupId": None,
                "nvLinkLogicalPartitionId": None,
                "labels": labels or {},
            },
        )
        await tx.insert(vpc, "VPC provisioning request received")
        await tx.set_status(vpc, "Ready", "VPC is ready for use")
        return await one(tx, vpc, 201)


async def list_vpcs(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    query_uuid(request, "siteId")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpcs = query_filter(
            await tx.find("vpc", tenant_id=tenant.id), request, siteId=lambda o: o.site_id, status=lambda o: o.status
        )
        return await listing(request, tx, vpcs)


async def get_vpc(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    vpc_id = path_id(request, "vpcId", "VPC")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        return await one(tx, await owned(tx, "vpc", vpc_id, "VPC", tenant_id=tenant.id))


async def update_vpc(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    vpc_id = path_id(request, "vpcId", "VPC")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    labels = fields.labels()
    fields.check("VPC update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpc = await owned(tx, "vpc", vpc_id, "VPC", tenant_id=tenant.id)
        doc = dict(vpc.doc)
        if name is not None:
            vpc.name, doc["name"], vpc.unique_key = name, name, f"vpc:{tenant.id}:{vpc.site_id}:{name}"
        if description is not None:
            doc["description"] = description
        if labels is not None:
            doc["labels"] = labels
        vpc.doc = doc
        await tx.save(vpc)
        return await one(tx, vpc)


async def update_vpc_virtualization(nico: Nico, request: Request) -> Response:
    """ETHERNET_VIRTUALIZER → FNN only, on a native-networking site, before subnets or instances."""
    caller = await nico.caller(request)
    vpc_id = path_id(request, "vpcId", "VPC")
    fields = Fields(await nico.body(request))
    fields.enum("networkVirtualizationType", ("FNN",), required=True)
    fields.check("VPC virtualization update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpc = await owned(tx, "vpc", vpc_id, "VPC", tenant_id=tenant.id)
        site = await tx.get("site", str(vpc.site_id))
        if site is None or not site.doc["capabilities"].get("nativeNetworking"):
            raise BadRequest("FNN virtualization needs a Site with native networking")
        if await tx.count("subnet", parent_id=vpc.id) or await tx.count("instance", parent_id=vpc.id):
            raise BadRequest("VPC virtualization cannot change while the VPC has Subnets or Instances")
        vpc.doc = {**vpc.doc, "networkVirtualizationType": "FNN"}
        await tx.save(vpc)
        return await one(tx, vpc)


async def delete_vpc(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    vpc_id = path_id(request, "vpcId", "VPC")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpc = await owned(tx, "vpc", vpc_id, "VPC", tenant_id=tenant.id)
        for kind in ("subnet", "vpc_prefix", "instance"):
            if await tx.count(kind, parent_id=vpc.id):
                raise BadRequest("VPC has Subnets, VPC Prefixes or Instances which must be deleted first")
        await tx.remove(vpc.id)
    return deletion_accepted()


# --- VPC prefixes and subnets ---------------------------------------------------------------------


async def _segment_parents(tx: Tx, tenant: Obj, vpc_id: str, block_id: str, virtualization: str) -> tuple[Obj, Obj]:
    vpc = await tx.get("vpc", vpc_id)
    if vpc is None or vpc.tenant_id != tenant.id:
        raise BadRequest("VPC specified in request does not exist", {"vpcId": "unknown VPC"})
    if vpc.doc["networkVirtualizationType"] != virtualization:
        raise BadRequest(f"VPC network virtualization type must be {virtualization}", {"vpcId": "wrong VPC type"})
    if vpc.status != "Ready":
        raise BadRequest("VPC is not ready")
    site = await tx.get("site", str(vpc.site_id))
    if site is None or site.status != "Registered":
        raise BadRequest("Site is not ready")
    block = await tx.get("ipblock", block_id)
    if block is None or block.tenant_id != tenant.id or block.site_id != vpc.site_id:
        raise BadRequest("IP Block must be a Tenant IP Block on the VPC's Site", {"ipBlockId": "unknown IP Block"})
    return vpc, block


async def create_vpc_prefix(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    vpc_id = fields.uuid("vpcId", required=True)
    block_id = fields.uuid("ipBlockId", required=True)
    length = fields.integer("prefixLength", required=True, lo=8, hi=31)
    fields.check("VPC Prefix creation request")
    assert vpc_id is not None and block_id is not None and length is not None
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpc, block = await _segment_parents(tx, tenant, vpc_id, block_id, "FNN")
        prefix_id = new_id()
        child = await carve(tx, block, length, prefix_id)
        if child is None:
            raise BadRequest(
                "Could not create IPAM entry for VPC Prefix: no free prefix of that length in the IP Block"
            )
        obj = Obj(
            id=prefix_id,
            kind="vpc_prefix",
            org=caller.org,
            status="Ready",
            tenant_id=tenant.id,
            site_id=vpc.site_id,
            parent_id=vpc.id,
            name=name,
            unique_key=f"vpc_prefix:{tenant.id}:{vpc.site_id}:{name}",
            doc={
                "name": name,
                "siteId": vpc.site_id,
                "vpcId": vpc.id,
                "tenantId": tenant.id,
                "ipBlockId": block.id,
                "prefix": str(child),
                "prefixLength": child.prefixlen,
            },
        )
        await tx.insert(obj, "VPC Prefix is ready for use")
        return await one(tx, obj, 201)


async def create_subnet(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    vpc_id = fields.uuid("vpcId", required=True)
    block_id = fields.uuid("ipv4BlockId", required=True)
    if fields.present("ipv6BlockId"):
        fields.errors["ipv6BlockId"] = "IPv6 not supported yet"
    length = fields.integer("prefixLength", required=True, lo=8, hi=30)
    fields.check("Subnet creation request")
    assert vpc_id is not None and block_id is not None and length is not None
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        vpc, block = await _segment_parents(tx, tenant, vpc_id, block_id, "ETHERNET_VIRTUALIZER")
        subnet_id = new_id()
        child = await carve(tx, block, length, subnet_id)
        if child is None:
            raise BadRequest("Could not create IPAM entry for Subnet: no free prefix of that length in the IP Block")
        obj = Obj(
            id=subnet_id,
            kind="subnet",
            org=caller.org,
            status="Pending",
            tenant_id=tenant.id,
            site_id=vpc.site_id,
            parent_id=vpc.id,
            name=name,
            unique_key=f"subnet:{tenant.id}:{vpc.site_id}:{name}",
            doc={
                "name": name,
                "description": description,
                "siteId": vpc.site_id,
                "vpcId": vpc.id,
                "tenantId": tenant.id,
                "controllerNetworkSegmentId": subnet_id,
                "ipv4Prefix": str(child.network_address),
                "ipv4BlockId": block.id,
                "ipv4Gateway": str(child.network_address + 1),
                "ipv6Prefix": None,
                "ipv6BlockId": None,
                "ipv6Gateway": None,
                "mtu": 9000,
                "prefixLength": child.prefixlen,
                "routingType": block.doc["routingType"],
            },
        )
        await tx.insert(obj, "Subnet provisioning request received")
        await tx.set_status(obj, "Ready", "Subnet is ready for use")
        return await one(tx, obj, 201)


def _segment_handlers(kind: str, what: str, path_param: str, with_description: bool) -> dict[str, Any]:
    async def list_all(nico: Nico, request: Request) -> Response:
        caller = await nico.caller(request)
        query_uuid(request, "siteId")
        query_uuid(request, "vpcId")
        async with nico.store.write() as tx:
            tenant = await tenant_side(tx, caller)
            objs = query_filter(
                await tx.find(kind, tenant_id=tenant.id),
                request,
                siteId=lambda o: o.site_id,
                vpcId=lambda o: o.parent_id,
                status=lambda o: o.status,
            )
            return await listing(request, tx, objs)

    async def get(nico: Nico, request: Request) -> Response:
        caller = await nico.caller(request)
        object_id = path_id(request, path_param, what)
        async with nico.store.write() as tx:
            tenant = await tenant_side(tx, caller)
            return await one(tx, await owned(tx, kind, object_id, what, tenant_id=tenant.id))

    async def patch(nico: Nico, request: Request) -> Response:
        caller = await nico.caller(request)
        object_id = path_id(request, path_param, what)
        fields = Fields(await nico.body(request, allow_empty=True))
        name = fields.name(required=False)
        description = fields.description() if with_description else None
        fields.check(f"{what} update request")
        async with nico.store.write() as tx:
            tenant = await tenant_side(tx, caller)
            obj = await owned(tx, kind, object_id, what, tenant_id=tenant.id)
            if name is not None:
                obj.name, obj.unique_key = name, f"{kind}:{tenant.id}:{obj.site_id}:{name}"
                obj.doc = {**obj.doc, "name": name}
            if description is not None:
                obj.doc = {**obj.doc, "description": description}
            await tx.save(obj)
            return await one(tx, obj)

    async def remove(nico: Nico, request: Request) -> Response:
        caller = await nico.caller(request)
        object_id = path_id(request, path_param, what)
        async with nico.store.write() as tx:
            tenant = await tenant_side(tx, caller)
            obj = await owned(tx, kind, object_id, what, tenant_id=tenant.id)
            key = "subnetId" if kind == "subnet" else "vpcPrefixId"
            for instance in await tx.find("instance", tenant_id=tenant.id):
                if any(i.get(key) == obj.id for i in instance.doc.get("interfaces") or []):
                    raise BadRequest(f"{what} is in use by Instances and cannot be deleted")
            await tx.remove(obj.id)
        return deletion_accepted()

    return {"list": list_all, "get": get, "patch": patch, "delete": remove}


VPC_PREFIX = _segment_handlers("vpc_prefix", "VPC Prefix", "vpcPrefixId", with_description=False)
SUBNET = _segment_handlers("subnet", "Subnet", "subnetId", with_description=True)
