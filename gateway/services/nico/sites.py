"""Sites (Pending → Registered when the site agent pairs), their machines, instance types and the
instance-type/machine associations."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.services.nico.context import (
    Nico,
    json,
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
    rendered,
    tenant_of,
)
from gateway.services.nico.errors import BadRequest, Conflict, Forbidden
from gateway.services.nico.inventory import CAPABILITY_TYPES, SITE_CAPABILITIES
from gateway.services.nico.roles import PROVIDER_ADMIN, PROVIDER_ROLES, TENANT_ADMIN, Caller
from gateway.services.nico.store import Obj, Tx
from gateway.services.nico.validation import Fields
from gateway.store.clock import now_ms, rfc3339

REGISTRATION_TOKEN_SECONDS = 24 * 3600
SITE_ORDER = ("name", "status", "created", "updated", "description")
MACHINE_ORDER = ("status", "created", "updated", "id")


def _strings(fields: Fields, key: str, allowed: tuple[str, ...]) -> dict[str, str] | None:
    value = fields.mapping(key)
    if value is None:
        return None
    if any(k not in allowed or not isinstance(v, str) for k, v in value.items()):
        fields.errors[key] = f"takes string values for {', '.join(allowed)}"
        return None
    return dict(value)


async def create_site_row(tx: Tx, provider: Obj, body: dict[str, Any], capabilities: dict[str, bool]) -> Obj:
    site_id = new_id()
    caps = {name: bool(capabilities.get(name, False)) for name in SITE_CAPABILITIES}
    site = Obj(
        id=site_id,
        kind="site",
        org=provider.org,
        status="Pending",
        provider_id=provider.id,
        site_id=site_id,
        name=body["name"],
        unique_key=f"site:{provider.id}:{body['name']}",
        doc={
            "name": body["name"],
            "description": body.get("description"),
            "org": provider.org,
            "infrastructureProviderId": provider.id,
            "siteControllerVersion": None,
            "siteAgentVersion": None,
            "registrationToken": secrets.token_urlsafe(24),
            "registrationTokenExpiration": rfc3339(now_ms() + REGISTRATION_TOKEN_SECONDS * 1000),
            "serialConsoleHostname": body.get("serialConsoleHostname"),
            "isSerialConsoleEnabled": False,
            "isSerialConsoleSSHKeysEnabled": False,
            "isOnline": False,
            "location": body.get("location") or {},
            "contact": body.get("contact") or {},
            "capabilities": caps,
        },
    )
    return await tx.insert(site, "Site created, awaiting site agent registration")


def _site_view(site: Obj, caller: Caller, provider_id: str | None) -> Obj:
    if site.provider_id != provider_id:
        doc = dict(site.doc)
        doc.pop("registrationToken", None)
        doc.pop("registrationTokenExpiration", None)
        site.doc = doc
    return site


async def visible_sites(tx: Tx, caller: Caller) -> tuple[list[Obj], str | None]:
    """Provider: its sites; tenant: sites where it holds an allocation (merged for both roles)."""
    found: dict[str, Obj] = {}
    provider_id: str | None = None
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        provider_id = provider.id
        found.update({s.id: s for s in await tx.find("site", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        tenant = await tenant_of(tx, caller)
        site_ids = {a.site_id for a in await tx.find("allocation", tenant_id=tenant.id)}
        if site_ids:
            found.update({s.id: s for s in await tx.find("site", id=list(site_ids))})
    return [_site_view(s, caller, provider_id) for s in found.values()], provider_id


async def create_site(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    fields.description()
    fields.string("serialConsoleHostname", max_len=253)
    location = _strings(fields, "location", ("city", "state", "country"))
    contact = _strings(fields, "contact", ("email",))
    fields.check("Site creation request")
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        body = {**fields.raw, "name": name, "location": location, "contact": contact}
        site = await create_site_row(tx, provider, body, {})
        return await one(tx, site, 201)


async def list_sites(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    query_uuid(request, "infrastructureProviderId")
    query_uuid(request, "tenantId")
    async with nico.store.write() as tx:
        sites, _ = await visible_sites(tx, caller)
        sites = query_filter(
            sites, request, status=lambda o: o.status, infrastructureProviderId=lambda o: o.provider_id
        )
        native = request.query_params.get("isNativeNetworkingEnabled")
        if native in ("true", "false"):
            sites = [s for s in sites if s.doc["capabilities"]["nativeNetworking"] == (native == "true")]
        return await listing(request, tx, sites, SITE_ORDER)


async def visible_site(tx: Tx, caller: Caller, site_id: str) -> Obj:
    sites, _ = await visible_sites(tx, caller)
    return pick(sites, site_id, "Site")


async def get_site(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    site_id = path_id(request, "siteId", "Site")
    async with nico.store.write() as tx:
        return await one(tx, await visible_site(tx, caller, site_id))


async def get_site_status_history(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    site_id = path_id(request, "siteId", "Site")
    async with nico.store.write() as tx:
        site = await visible_site(tx, caller, site_id)
        entries = (await tx.history([site.id]))[site.id]
    items = [
        {"status": h.status, "message": h.message, "created": rfc3339(h.created_at), "updated": rfc3339(h.created_at)}
        for h in entries
    ]
    return json(items, headers={"X-Pagination": f'{{"pageNumber":1,"pageSize":{len(items)},"total":{len(items)}}}'})


async def update_site(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    site_id = path_id(request, "siteId", "Site")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    location = _strings(fields, "location", ("city", "state", "country"))
    contact = _strings(fields, "contact", ("email",))
    capabilities = fields.mapping("capabilities")
    if capabilities is not None and any(
        k not in SITE_CAPABILITIES or not isinstance(v, (bool, type(None))) for k, v in capabilities.items()
    ):
        fields.errors["capabilities"] = f"takes booleans for {', '.join(SITE_CAPABILITIES)}"
    renew = fields.boolean("renewRegistrationToken")
    fields.check("Site update request")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        site = await owned(tx, "site", site_id, "Site", provider_id=provider.id)
        doc = dict(site.doc)
        if name is not None:
            site.name, doc["name"] = name, name
            site.unique_key = f"site:{provider.id}:{name}"
        if description is not None:
            doc["description"] = description
        if location is not None:
            doc["location"] = location
        if contact is not None:
            doc["contact"] = contact
        if capabilities:
            doc["capabilities"] = {**doc["capabilities"], **{k: v for k, v in capabilities.items() if v is not None}}
        if renew:
            doc["registrationToken"] = secrets.token_urlsafe(24)
            doc["registrationTokenExpiration"] = rfc3339(now_ms() + REGISTRATION_TOKEN_SECONDS * 1000)
        site.doc = doc
        await tx.save(site)
        return await one(tx, site)


async def delete_site(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    site_id = path_id(request, "siteId", "Site")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        site = await owned(tx, "site", site_id, "Site", provider_id=provider.id)
        if await tx.count("allocation", site_id=site.id):
            raise Forbidden("Site has Allocations which must be deleted first")
        for kind in ("machine_instance_type", "machine", "instance_type", "ipblock"):
            for obj in await tx.find(kind, site_id=site.id):
                await tx.remove(obj.id)
        await tx.remove(site.id)
    return Response(status_code=202)


# --- machines -------------------------------------------------------------------------------------


def machine_row(site: Obj, machine_id: str, inventory: Any) -> Obj:
    return Obj(
        id=machine_id,
        kind="machine",
        org=site.org,
        status="Ready",
        provider_id=site.provider_id,
        site_id=site.id,
        name=machine_id,
        doc={
            "infrastructureProviderId": site.provider_id,
            "siteId": site.id,
            "instanceTypeId": None,
            "instanceId": None,
            "tenantId": None,
            "controllerMachineId": machine_id,
            "controllerMachineType": inventory.machine_type,
            "hwSkuDeviceType": None,
            "vendor": inventory.vendor,
            "productName": inventory.product_name,
            "serialNumber": inventory.serial_number,
            "machineCapabilities": list(inventory.capabilities),
            "machineInterfaces": [
                {
                    "id": new_id(),
                    "machineId": machine_id,
                    "macAddress": nic.get("macAddress"),
                    "isPrimary": index == 0,
                    "ipAddresses": [],
                }
                for index, nic in enumerate(inventory.interfaces)
            ],
            "maintenanceMessage": None,
            "labels": {},
            "isUsableByTenant": True,
        },
    )


async def _visible_machines(tx: Tx, caller: Caller) -> list[Obj]:
    found: dict[str, Obj] = {}
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        found.update({m.id: m for m in await tx.find("machine", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        tenant = await tenant_of(tx, caller)
        found.update({m.id: m for m in await tx.find("machine", tenant_id=tenant.id)})
    return list(found.values())


async def list_machines(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    query_uuid(request, "siteId")
    query_uuid(request, "instanceTypeId")
    async with nico.store.write() as tx:
        machines = query_filter(
            await _visible_machines(tx, caller),
            request,
            siteId=lambda o: o.site_id,
            id=lambda o: o.id,
            status=lambda o: o.status,
            instanceTypeId=lambda o: o.doc.get("instanceTypeId"),
        )
        for flag, key in (("hasInstanceType", "instanceTypeId"), ("hasInstance", "instanceId")):
            value = request.query_params.get(flag)
            if value in ("true", "false"):
                machines = [m for m in machines if (m.doc.get(key) is not None) == (value == "true")]
        return await listing(request, tx, machines, MACHINE_ORDER)


async def visible_machine(tx: Tx, caller: Caller, machine_id: str) -> Obj:
    return pick(await _visible_machines(tx, caller), machine_id, "Machine")


async def get_machine(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    async with nico.store.write() as tx:
        return await one(tx, await visible_machine(tx, caller, str(request.path_params["machineId"])))


async def get_machine_status_history(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    async with nico.store.write() as tx:
        machine = await visible_machine(tx, caller, str(request.path_params["machineId"]))
        entries = (await tx.history([machine.id]))[machine.id]
    items = [
        {"status": h.status, "message": h.message, "created": rfc3339(h.created_at), "updated": rfc3339(h.created_at)}
        for h in entries
    ]
    return json(items, headers={"X-Pagination": f'{{"pageNumber":1,"pageSize":{len(items)},"total":{len(items)}}}'})


def _covers(machine: Obj, itype: Obj) -> bool:
    """The machine's capabilities are a superset of the instance type's."""
    have = machine.doc.get("machineCapabilities") or []
    for want in itype.doc.get("machineCapabilities") or []:
        if not any(
            c.get("type") == want.get("type")
            and c.get("name") == want.get("name")
            and (want.get("count") is None or (c.get("count") or 0) >= want["count"])
            for c in have
        ):
            return False
    return True


async def associate(tx: Tx, itype: Obj, machine: Obj) -> Obj:
    if machine.site_id != itype.site_id:
        raise BadRequest(f"Machine {machine.id} is not on the Instance Type's Site")
    if machine.doc.get("instanceTypeId") not in (None, itype.id):
        raise Conflict(f"Machine {machine.id} is already associated with another Instance Type")
    if not _covers(machine, itype):
        raise Conflict(f"Machine {machine.id} capabilities do not match the Instance Type's capabilities")
    existing = await tx.find("machine_instance_type", name=machine.id)
    if existing:
        return existing[0]
    machine.doc = {**machine.doc, "instanceTypeId": itype.id}
    machine.parent_id = itype.id
    await tx.save(machine)
    return await tx.insert(
        Obj(
            id=new_id(),
            kind="machine_instance_type",
            org=itype.org,
            status="Ready",
            provider_id=itype.provider_id,
            site_id=itype.site_id,
            parent_id=itype.id,
            name=machine.id,
            unique_key=f"mit:{machine.id}",
            doc={"machineId": machine.id, "instanceTypeId": itype.id},
        )
    )


async def dissociate(tx: Tx, machine: Obj) -> None:
    if machine.doc.get("instanceId"):
        raise BadRequest(f"Machine {machine.id} is in use by an Instance")
    for assoc in await tx.find("machine_instance_type", name=machine.id):
        await tx.remove(assoc.id)
    machine.doc = {**machine.doc, "instanceTypeId": None}
    machine.parent_id = None
    await tx.save(machine)


async def update_machine(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    machine_id = str(request.path_params["machineId"])
    fields = Fields(await nico.body(request))
    type_id = fields.uuid("instanceTypeId")
    clear = fields.boolean("clearInstanceType")
    maintenance = fields.boolean("setMaintenanceMode")
    message = fields.string("maintenanceMessage", min_len=5, max_len=256)
    labels = fields.labels()
    chosen = [k for k in ("instanceTypeId", "clearInstanceType", "setMaintenanceMode", "labels") if fields.present(k)]
    if len(chosen) > 1:
        fields.errors["__all__"] = "only one kind of change may be made per request"
    if not chosen and not fields.errors:
        fields.errors["__all__"] = "one of instanceTypeId, clearInstanceType, setMaintenanceMode, labels is required"
    fields.check("Machine update request")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        machine = await owned(tx, "machine", machine_id, "Machine", provider_id=provider.id)
        if type_id is not None:
            itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
            await tx.lock(itype.id)
            await associate(tx, itype, machine)
        elif clear:
            await dissociate(tx, machine)
        elif maintenance is not None:
            machine.doc = {**machine.doc, "maintenanceMessage": message if maintenance else None}
            status = "Maintenance" if maintenance else ("InUse" if machine.doc.get("instanceId") else "Ready")
            await tx.set_status(machine, status, message or "Maintenance mode changed")
        elif labels is not None:
            machine.doc = {**machine.doc, "labels": labels}
            await tx.save(machine)
        return await one(tx, machine)


# --- instance types -------------------------------------------------------------------------------


def _capabilities(fields: Fields) -> list[dict[str, Any]] | None:
    items = fields.array("machineCapabilities")
    if items is None:
        return None
    keys = {
        "type",
        "name",
        "frequency",
        "capacity",
        "vendor",
        "count",
        "inactiveDevices",
        "deviceType",
        "cores",
        "threads",
    }
    for item in items:
        if (
            not isinstance(item, dict)
            or item.get("type") not in CAPABILITY_TYPES
            or not isinstance(item.get("name"), str)
            or not set(item) <= keys
            or not isinstance(item.get("count", 0), (int, type(None)))
            or isinstance(item.get("count"), bool)
        ):
            fields.errors["machineCapabilities"] = (
                f"each needs a type ({', '.join(CAPABILITY_TYPES)}), a string name and an integer count"
            )
            return None
    return [dict(i) for i in items]


async def create_instance_type(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    site_id = fields.uuid("siteId", required=True)
    labels = fields.labels()
    machine_type = fields.string("controllerMachineType", max_len=256)
    capabilities = _capabilities(fields)
    fields.check("Instance Type creation request")
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        site = await tx.get("site", str(site_id))
        if site is None or site.provider_id != provider.id:
            raise BadRequest(
                "Site specified in request does not exist or belongs to another provider", {"siteId": "unknown Site"}
            )
        itype = Obj(
            id=new_id(),
            kind="instance_type",
            org=provider.org,
            status="Ready",
            provider_id=provider.id,
            site_id=site.id,
            name=name,
            unique_key=f"instance_type:{site.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "controllerMachineType": machine_type,
                "infrastructureProviderId": provider.id,
                "siteId": site.id,
                "labels": labels or {},
                "machineCapabilities": capabilities or [],
            },
        )
        await tx.insert(itype, "Instance Type is ready for use")
        return await one(tx, itype, 201)


async def visible_instance_types(tx: Tx, caller: Caller) -> list[Obj]:
    """Provider: its types; tenant: those it holds a compute allocation for."""
    found: dict[str, Obj] = {}
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        found.update({t.id: t for t in await tx.find("instance_type", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        tenant = await tenant_of(tx, caller)
        ids = {
            c["resourceTypeId"]
            for a in await tx.find("allocation", tenant_id=tenant.id)
            for c in a.doc["allocationConstraints"]
            if c["resourceType"] == "InstanceType"
        }
        if ids:
            found.update({t.id: t for t in await tx.find("instance_type", id=list(ids))})
    return list(found.values())


async def list_instance_types(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    query_uuid(request, "siteId")
    async with nico.store.write() as tx:
        types = query_filter(
            await visible_instance_types(tx, caller), request, siteId=lambda o: o.site_id, status=lambda o: o.status
        )
        return await listing(request, tx, types)


async def visible_instance_type(tx: Tx, caller: Caller, type_id: str) -> Obj:
    return pick(await visible_instance_types(tx, caller), type_id, "Instance Type")


async def get_instance_type(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    async with nico.store.write() as tx:
        return await one(tx, await visible_instance_type(tx, caller, type_id))


async def update_instance_type(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    description = fields.description()
    labels = fields.labels()
    capabilities = _capabilities(fields)
    fields.check("Instance Type update request")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
        doc = dict(itype.doc)
        if name is not None:
            itype.name, doc["name"], itype.unique_key = name, name, f"instance_type:{itype.site_id}:{name}"
        if description is not None:
            doc["description"] = description
        if labels is not None:
            doc["labels"] = labels
        if capabilities is not None:
            if await tx.count("machine_instance_type", parent_id=itype.id):
                raise BadRequest("Capabilities cannot change while Machines are associated with the Instance Type")
            doc["machineCapabilities"] = capabilities
        itype.doc = doc
        await tx.save(itype)
        return await one(tx, itype)


async def delete_instance_type(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
        in_use = any(
            c["resourceTypeId"] == itype.id
            for a in await tx.find("allocation", provider_id=provider.id)
            for c in a.doc["allocationConstraints"]
        )
        in_use = in_use or any(
            i.doc.get("instanceTypeId") == itype.id for i in await tx.find("instance", site_id=itype.site_id)
        )
        if in_use:
            raise BadRequest("Instance Type is in use by Allocations or Instances and cannot be deleted")
        for machine in await tx.find("machine", parent_id=itype.id):
            await dissociate(tx, machine)
        await tx.remove(itype.id)
    return Response(status_code=202)


async def create_machine_association(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    fields = Fields(await nico.body(request))
    ids = fields.array("machineIds", required=True)
    if ids is not None and (not ids or not all(isinstance(i, str) and i for i in ids)):
        fields.errors["machineIds"] = "must be a non-empty array of Machine IDs"
    fields.check("Machine/Instance Type association request")
    assert ids is not None
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
        await tx.lock(itype.id)
        created = []
        for machine_id in dict.fromkeys(ids):
            machine = await tx.get("machine", machine_id)
            if machine is None or machine.provider_id != provider.id:
                raise BadRequest(
                    f"Machine {machine_id} does not exist", {"machineIds": f"unknown Machine {machine_id}"}
                )
            created.append(await associate(tx, itype, machine))
        return json(await rendered(tx, created), 201)


async def list_machine_associations(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=False)
        itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
        return await listing(
            request, tx, await tx.find("machine_instance_type", parent_id=itype.id), ("created", "updated")
        )


async def delete_machine_association(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    type_id = path_id(request, "instanceTypeId", "Instance Type")
    ref = str(request.path_params["machineAssociationId"])
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=True)
        itype = await owned(tx, "instance_type", type_id, "Instance Type", provider_id=provider.id)
        # The path names the machine; the older association-id form is still accepted.
        assocs = [a for a in await tx.find("machine_instance_type", parent_id=itype.id) if ref in (a.id, a.name)]
        if not assocs:
            raise not_found("Machine/Instance Type association")
        machine = await tx.get("machine", str(assocs[0].name))
        if machine is not None:
            await dissociate(tx, machine)
        else:
            await tx.remove(assocs[0].id)
    return Response(status_code=202)
