"""Operating systems and instances (Pending → Provisioning → Ready on the site agent's clock;
delete → Terminating → gone)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.services.nico.accepted import deletion_accepted
from gateway.services.nico.context import (
    Nico,
    json,
    listing,
    new_id,
    one,
    owned,
    path_id,
    query_filter,
    query_uuid,
    tenant_side,
)
from gateway.services.nico.errors import BadRequest, Forbidden
from gateway.services.nico.roles import TENANT_ADMIN
from gateway.services.nico.store import Obj, Tx
from gateway.services.nico.validation import Fields
from gateway.store.clock import rfc3339

ACTIVE_INSTANCE = ("Pending", "Provisioning", "Configuring", "Ready", "Updating", "Rebooting", "Repairing")


# --- operating systems ----------------------------------------------------------------------------


async def create_os(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    ipxe = fields.string("ipxeScript")
    image = fields.string("imageUrl", max_len=2048)
    user_data = fields.string("userData")
    cloud_init = fields.boolean("isCloudInit")
    allow_override = fields.boolean("allowOverride")
    phone_home = fields.boolean("phoneHomeEnabled")
    if fields.present("infrastructureProviderId"):
        fields.errors["infrastructureProviderId"] = "Provider Operating Systems are currently not supported"
    if (ipxe is None) == (image is None) and "ipxeScript" not in fields.errors and "imageUrl" not in fields.errors:
        fields.errors["__all__"] = "exactly one of ipxeScript and imageUrl is required"
    if image is not None:
        fields.errors["imageUrl"] = "image based Operating Systems are not supported by the embedded site"
    fields.check("Operating System creation request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = Obj(
            id=new_id(),
            kind="os",
            org=caller.org,
            status="Ready",
            tenant_id=tenant.id,
            name=name,
            unique_key=f"os:{tenant.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "infrastructureProviderId": None,
                "tenantId": tenant.id,
                "type": "iPXE",
                "imageUrl": None,
                "imageSha": None,
                "imageAuthType": None,
                "imageAuthToken": None,
                "imageDisk": None,
                "rootFsId": None,
                "rootFsLabel": None,
                "ipxeScript": ipxe,
                "userData": user_data,
                "isCloudInit": bool(cloud_init),
                "phoneHomeEnabled": bool(phone_home),
                "isActive": True,
                "deactivationNote": None,
                "allowOverride": bool(allow_override),
                "siteAssociations": [],
            },
        )
        await tx.insert(obj, "Operating System is ready for use")
        return await one(tx, obj, 201)


async def list_os(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        objs = query_filter(
            await tx.find("os", tenant_id=tenant.id), request, status=lambda o: o.status, type=lambda o: o.doc["type"]
        )
        return await listing(request, tx, objs)


async def get_os(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    os_id = path_id(request, "operatingSystemId", "Operating System")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        return await one(tx, await owned(tx, "os", os_id, "Operating System", tenant_id=tenant.id))


async def update_os(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    os_id = path_id(request, "operatingSystemId", "Operating System")
    fields = Fields(await nico.body(request, allow_empty=True))
    updates: dict[str, Any] = {}
    for key, value in (
        ("name", fields.name(required=False)),
        ("description", fields.description()),
        ("ipxeScript", fields.string("ipxeScript")),
        ("userData", fields.string("userData")),
        ("isActive", fields.boolean("isActive")),
        ("deactivationNote", fields.string("deactivationNote", max_len=1024)),
    ):
        if value is not None:
            updates[key] = value
    fields.check("Operating System update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "os", os_id, "Operating System", tenant_id=tenant.id)
        if "name" in updates:
            obj.name, obj.unique_key = updates["name"], f"os:{tenant.id}:{updates['name']}"
        obj.doc = {**obj.doc, **updates}
        if "isActive" in updates:
            await tx.set_status(obj, "Ready" if updates["isActive"] else "Deactivated", "Activation changed")
        else:
            await tx.save(obj)
        return await one(tx, obj)


async def delete_os(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    os_id = path_id(request, "operatingSystemId", "Operating System")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "os", os_id, "Operating System", tenant_id=tenant.id)
        if any(i.doc.get("operatingSystemId") == obj.id for i in await tx.find("instance", tenant_id=tenant.id)):
            raise BadRequest("Operating System is in use by Instances and cannot be deleted")
        await tx.remove(obj.id)
    return deletion_accepted()


# --- instances ------------------------------------------------------------------------------------


def _interfaces(fields: Fields) -> list[dict[str, Any]] | None:
    items = fields.array("interfaces")
    if items is None:
        return None
    parsed = []
    for item in items:
        inner = Fields(item if isinstance(item, dict) else {})
        subnet, prefix = inner.uuid("subnetId"), inner.uuid("vpcPrefixId")
        physical = inner.boolean("isPhysical")
        if not isinstance(item, dict) or inner.errors or (subnet is None) == (prefix is None):
            fields.errors["interfaces"] = "each interface needs exactly one of subnetId and vpcPrefixId"
            return None
        parsed.append({"subnetId": subnet, "vpcPrefixId": prefix, "isPhysical": bool(physical)})
    return parsed


async def _quota(tx: Tx, tenant: Obj, type_id: str) -> None:
    await tx.lock(tenant.id)
    limit = sum(
        c["constraintValue"]
        for a in await tx.find("allocation", tenant_id=tenant.id)
        for c in a.doc["allocationConstraints"]
        if c["resourceType"] == "InstanceType" and c["resourceTypeId"] == type_id
    )
    active = sum(
        1
        for i in await tx.find("instance", tenant_id=tenant.id, status=list(ACTIVE_INSTANCE) + ["Terminating"])
        if i.doc.get("instanceTypeId") == type_id
    )
    if active >= limit:
        raise Forbidden(
            "Tenant has reached the maximum number of Instances allowed by its Allocations for this Instance Type"
        )


async def _boot_os(tx: Tx, tenant: Obj, os_id: str | None, user_data: str | None) -> Obj | None:
    if os_id is None:
        return None
    os_obj = await tx.get("os", os_id)
    if os_obj is None or os_obj.tenant_id != tenant.id:
        raise BadRequest("Operating System does not exist", {"operatingSystemId": "unknown Operating System"})
    if not os_obj.doc["isActive"]:
        raise BadRequest("Operating System is deactivated", {"operatingSystemId": "deactivated"})
    if user_data is not None and not os_obj.doc["allowOverride"]:
        raise BadRequest(
            "userData may be given only when the Operating System allows override", {"userData": "not allowed"}
        )
    return os_obj


async def _check_interfaces(tx: Tx, tenant: Obj, vpc: Obj, interfaces: list[dict[str, Any]]) -> None:
    """All Subnet interfaces on an ETHERNET_VIRTUALIZER VPC, all VPC Prefix ones on FNN; Ready, in the VPC."""
    fnn = vpc.doc["networkVirtualizationType"] == "FNN"
    key, kind = ("vpcPrefixId", "vpc_prefix") if fnn else ("subnetId", "subnet")
    for interface in interfaces:
        segment = await tx.get(kind, str(interface.get(key))) if interface.get(key) else None
        if segment is None or segment.tenant_id != tenant.id or segment.parent_id != vpc.id:
            raise BadRequest(
                f"Interfaces of this VPC must use {key} of a {kind.replace('_', ' ')} in the VPC",
                {"interfaces": f"invalid {key}"},
            )
        if segment.status != "Ready":
            raise BadRequest("Interface segment is not ready", {"interfaces": "segment not Ready"})
    if sum(1 for i in interfaces if i["isPhysical"]) > 1:
        raise BadRequest("Only one interface may be physical", {"interfaces": "more than one physical"})


async def _pick_machine(
    tx: Tx, tenant: Obj, site: Obj, machine_id: str | None, type_id: str | None
) -> tuple[Obj, str | None]:
    """The targeted machine (privileged tenants) or a free one of the type within the tenant's quota."""
    if machine_id is not None:
        if not tenant.doc["capabilities"]["targetedInstanceCreation"]:
            raise Forbidden("Tenant does not have the capability to create Instances on a specific Machine")
        await tx.lock(machine_id)
        machine = await tx.get("machine", machine_id)
        if machine is None or machine.site_id != site.id:
            raise BadRequest("Machine does not exist on the VPC's Site", {"machineId": "unknown Machine"})
        if machine.status != "Ready" or machine.doc.get("instanceId"):
            raise BadRequest("Machine is not available for a new Instance", {"machineId": "not available"})
        return machine, machine.doc.get("instanceTypeId")
    assert type_id is not None
    itype = await tx.get("instance_type", type_id)
    if itype is None or itype.site_id != site.id:
        raise BadRequest("Instance Type does not exist on the VPC's Site", {"instanceTypeId": "unknown Instance Type"})
    await _quota(tx, tenant, type_id)
    await tx.lock(itype.id)
    free = [m for m in await tx.find("machine", parent_id=type_id, status="Ready") if not m.doc.get("instanceId")]
    if not free:
        raise Forbidden("No Machine of this Instance Type is available")
    return free[0], type_id


async def create_instance(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    tenant_id = fields.uuid("tenantId", required=True)
    vpc_id = fields.uuid("vpcId", required=True)
    type_id = fields.uuid("instanceTypeId")
    machine_id = fields.string("machineId", max_len=256)
    os_id = fields.uuid("operatingSystemId")
    ipxe = fields.string("ipxeScript")
    user_data = fields.string("userData")
    labels = fields.labels()
    interfaces = _interfaces(fields)
    if (type_id is None) == (machine_id is None) and not {"instanceTypeId", "machineId"} & set(fields.errors):
        fields.errors["__all__"] = "exactly one of instanceTypeId and machineId is required"
    if os_id is None and ipxe is None and not {"operatingSystemId", "ipxeScript"} & set(fields.errors):
        fields.errors["operatingSystemId"] = "operatingSystemId or ipxeScript is required"
    if not interfaces and "interfaces" not in fields.errors:
        fields.errors["interfaces"] = "at least one interface is required"
    fields.check("Instance creation request")
    assert vpc_id is not None and interfaces
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        if tenant_id != tenant.id:
            raise Forbidden("tenantId in request does not match the org's Tenant")
        vpc = await tx.get("vpc", vpc_id)
        if vpc is None or vpc.tenant_id != tenant.id:
            raise BadRequest("VPC specified in request does not exist", {"vpcId": "unknown VPC"})
        site = await tx.get("site", str(vpc.site_id))
        if vpc.status != "Ready" or site is None or site.status != "Registered":
            raise BadRequest("VPC or its Site is not ready")
        os_obj = await _boot_os(tx, tenant, os_id, user_data)
        await _check_interfaces(tx, tenant, vpc, interfaces)
        machine, type_id = await _pick_machine(tx, tenant, site, machine_id, type_id)
        instance_id = new_id()
        macs = [n.get("macAddress") for n in machine.doc.get("machineInterfaces") or []]
        rendered_interfaces = [
            {
                "id": new_id(),
                "instanceId": instance_id,
                "subnetId": i["subnetId"],
                "vpcPrefixId": i["vpcPrefixId"],
                "isPhysical": i["isPhysical"],
                "device": None,
                "deviceInstance": None,
                "virtualFunctionId": None,
                "macAddress": macs[n] if n < len(macs) else None,
                "ipAddresses": [],
                "requestedIpAddress": None,
                "status": "Pending",
            }
            for n, i in enumerate(interfaces)
        ]
        instance = Obj(
            id=instance_id,
            kind="instance",
            org=caller.org,
            status="Pending",
            tenant_id=tenant.id,
            provider_id=machine.provider_id,
            site_id=site.id,
            parent_id=vpc.id,
            name=name,
            unique_key=f"instance:{tenant.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "tenantId": tenant.id,
                "infrastructureProviderId": machine.provider_id,
                "siteId": site.id,
                "instanceTypeId": type_id,
                "vpcId": vpc.id,
                "secondaryVpcIds": [],
                "machineId": machine.id,
                "operatingSystemId": os_id,
                "controllerInstanceId": instance_id,
                "ipxeScript": ipxe if os_obj is None else os_obj.doc["ipxeScript"],
                "alwaysBootWithCustomIpxe": False,
                "phoneHomeEnabled": False,
                "userData": user_data,
                "labels": labels or {},
                "isUpdatePending": False,
                "serialConsoleUrl": None,
                "autoNetwork": False,
                "interfaces": rendered_interfaces,
                "infinibandInterfaces": [],
                "nvLinkInterfaces": [],
                "dpuExtensionServiceDeployments": [],
                "sshKeyGroupIds": [],
                "sshKeyGroups": [],
                "tpmEkCertificate": None,
            },
        )
        await tx.insert(instance, "Instance creation request received")
        machine.tenant_id = tenant.id
        machine.doc = {**machine.doc, "instanceId": instance_id, "tenantId": tenant.id}
        await tx.set_status(machine, "InUse", "Machine assigned to an Instance")
        return await one(tx, instance, 201)


async def list_instances(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    for name in ("siteId", "vpcId", "instanceTypeId", "operatingSystemId"):
        query_uuid(request, name)
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        objs = query_filter(
            await tx.find("instance", tenant_id=tenant.id),
            request,
            siteId=lambda o: o.site_id,
            vpcId=lambda o: o.parent_id,
            status=lambda o: o.status,
            name=lambda o: o.name,
            instanceTypeId=lambda o: o.doc.get("instanceTypeId"),
            machineId=lambda o: o.doc.get("machineId"),
            operatingSystemId=lambda o: o.doc.get("operatingSystemId"),
        )
        return await listing(request, tx, objs)


async def get_instance(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    instance_id = path_id(request, "instanceId", "Instance")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        return await one(tx, await owned(tx, "instance", instance_id, "Instance", tenant_id=tenant.id))


async def get_instance_status_history(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    instance_id = path_id(request, "instanceId", "Instance")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "instance", instance_id, "Instance", tenant_id=tenant.id)
        entries = (await tx.history([obj.id]))[obj.id]
    items = [
        {"status": h.status, "message": h.message, "created": rfc3339(h.created_at), "updated": rfc3339(h.created_at)}
        for h in entries
    ]
    return json(items, headers={"X-Pagination": f'{{"pageNumber":1,"pageSize":{len(items)},"total":{len(items)}}}'})


async def list_instance_interfaces(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    instance_id = path_id(request, "instanceId", "Instance")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "instance", instance_id, "Instance", tenant_id=tenant.id)
    items = [
        {**i, "created": rfc3339(obj.created_at), "updated": rfc3339(obj.updated_at)}
        for i in obj.doc.get("interfaces") or []
    ]
    return json(items, headers={"X-Pagination": f'{{"pageNumber":1,"pageSize":20,"total":{len(items)}}}'})


async def update_instance(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    instance_id = path_id(request, "instanceId", "Instance")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    labels = fields.labels()
    reboot = fields.boolean("triggerReboot")
    for option in ("rebootWithCustomIpxe", "applyUpdatesOnReboot"):
        if fields.boolean(option) is not None and not reboot:
            fields.errors[option] = "is valid only with triggerReboot"
    if reboot and (name is not None or description is not None or labels is not None):
        fields.errors["triggerReboot"] = "a reboot cannot be combined with attribute changes"
    fields.check("Instance update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "instance", instance_id, "Instance", tenant_id=tenant.id)
        if obj.status == "Terminating":
            raise BadRequest("Instance is being terminated")
        if reboot:
            if obj.status != "Ready":
                raise BadRequest(f"Instance can be rebooted only when Ready, it is {obj.status}")
            await tx.set_status(obj, "Rebooting", "Instance reboot requested")
            return await one(tx, obj)
        if name is not None:
            obj.name, obj.unique_key = name, f"instance:{tenant.id}:{name}"
            obj.doc = {**obj.doc, "name": name}
        if description is not None:
            obj.doc = {**obj.doc, "description": description}
        if labels is not None:
            obj.doc = {**obj.doc, "labels": labels}
        await tx.save(obj)
        return await one(tx, obj)


async def delete_instance(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    instance_id = path_id(request, "instanceId", "Instance")
    await nico.body(request, allow_empty=True)
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        obj = await owned(tx, "instance", instance_id, "Instance", tenant_id=tenant.id)
        if obj.status != "Terminating":
            await tx.set_status(obj, "Terminating", "Instance termination request received")
    return deletion_accepted()
