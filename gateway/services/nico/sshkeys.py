"""SSH keys and SSH key groups (tenant): keys join groups, groups are associated with sites.

Embedded sites are always online, so a group is ``Synced`` at once; ``version`` is the group's
optimistic-concurrency token, changed by every update and required by PATCH.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.services.nico.context import (
    Nico,
    json,
    new_id,
    owned,
    path_id,
    query_filter,
    rendered,
    tenant_side,
)
from gateway.services.nico.errors import BadRequest
from gateway.services.nico.pagination import parse_page
from gateway.services.nico.store import Obj, Tx
from gateway.services.nico.validation import Fields, is_uuid

PUBLIC_KEY = r"^ssh-(rsa|ecdsa|ed25519) AAAA[0-9A-Za-z+/]+[=]{0,3}(\s+.+)?$"


def fingerprint(public_key: str) -> str | None:
    """OpenSSH's ``SHA256:…`` fingerprint of the key blob; None when the blob is not base64."""
    try:
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _ids(fields: Fields, key: str) -> list[str] | None:
    items = fields.array(key)
    if items is not None and not all(is_uuid(i) for i in items):
        fields.errors[key] = "must be an array of UUIDs"
        return None
    return [str(i).lower() for i in dict.fromkeys(items)] if items is not None else None


async def _group_view(tx: Tx, group: Obj) -> dict[str, Any]:
    out = (await rendered(tx, [group]))[0]
    keys = await tx.find("sshkey", id=group.doc["sshKeyIds"]) if group.doc["sshKeyIds"] else []
    sites = await tx.find("site", id=group.doc["siteIds"]) if group.doc["siteIds"] else []
    out["sshKeys"] = await rendered(tx, keys)
    out["siteAssociations"] = [
        {
            "site": {
                "id": s.id,
                "name": s.name,
                "infrastructureProviderId": s.provider_id,
                "isSerialConsoleEnabled": False,
                "isOnline": bool(s.doc.get("isOnline")),
                "capabilities": s.doc["capabilities"],
                "status": s.status,
            },
            "status": "Synced",
            "version": group.doc["version"],
            "created": out["created"],
            "updated": out["updated"],
        }
        for s in sites
    ]
    del out["sshKeyIds"], out["siteIds"]
    return out


async def _check_members(tx: Tx, tenant: Obj, key_ids: list[str] | None, site_ids: list[str] | None) -> None:
    if key_ids and len(await tx.find("sshkey", id=key_ids, tenant_id=tenant.id)) != len(key_ids):
        raise BadRequest("SSH Keys specified in request do not exist", {"sshKeyIds": "unknown SSH Key"})
    for site_id in site_ids or []:
        site = await tx.get("site", site_id)
        if site is None or not await tx.count("allocation", tenant_id=tenant.id, site_id=site_id):
            raise BadRequest("Sites specified in request are not available to the Tenant", {"siteIds": "unknown Site"})


async def create_group(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    fields = Fields(await nico.body(request))
    name = fields.name()
    description = fields.description()
    site_ids = _ids(fields, "siteIds")
    key_ids = _ids(fields, "sshKeyIds")
    fields.check("SSH Key Group creation request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        await _check_members(tx, tenant, key_ids, site_ids)
        group = Obj(
            id=new_id(),
            kind="sshkeygroup",
            org=caller.org,
            status="Synced",
            tenant_id=tenant.id,
            name=name,
            unique_key=f"sshkeygroup:{tenant.id}:{name}",
            doc={
                "name": name,
                "description": description,
                "org": caller.org,
                "tenantId": tenant.id,
                "version": secrets.token_hex(8),
                "sshKeyIds": key_ids or [],
                "siteIds": site_ids or [],
            },
        )
        await tx.insert(group, "SSH Key Group is synced to its Sites")
        return json(await _group_view(tx, group), 201)


async def list_groups(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    page = parse_page(request)
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        groups = query_filter(await tx.find("sshkeygroup", tenant_id=tenant.id), request, status=lambda o: o.status)
        site_id = request.query_params.get("siteId")
        if site_id:
            groups = [g for g in groups if site_id in g.doc["siteIds"]]
        items, header = page.apply([await _group_view(tx, g) for g in groups])
    return json(items, headers={"X-Pagination": header})


async def get_group(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    group_id = path_id(request, "sshKeyGroupId", "SSH Key Group")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        group = await owned(tx, "sshkeygroup", group_id, "SSH Key Group", tenant_id=tenant.id)
        return json(await _group_view(tx, group))


async def update_group(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    group_id = path_id(request, "sshKeyGroupId", "SSH Key Group")
    fields = Fields(await nico.body(request))
    name = fields.name(required=False)
    description = fields.description()
    site_ids = _ids(fields, "siteIds")
    key_ids = _ids(fields, "sshKeyIds")
    version = fields.string("version", required=True, max_len=64)
    fields.check("SSH Key Group update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        await tx.lock(group_id)
        group = await owned(tx, "sshkeygroup", group_id, "SSH Key Group", tenant_id=tenant.id)
        if version != group.doc["version"]:
            raise BadRequest(
                "SSH Key Group version does not match: it was changed since it was read", {"version": "stale"}
            )
        await _check_members(tx, tenant, key_ids, site_ids)
        doc = dict(group.doc, version=secrets.token_hex(8))
        if name is not None:
            group.name, doc["name"], group.unique_key = name, name, f"sshkeygroup:{tenant.id}:{name}"
        for key, value in (("description", description), ("siteIds", site_ids), ("sshKeyIds", key_ids)):
            if value is not None:
                doc[key] = value
        group.doc = doc
        await tx.save(group)
        return json(await _group_view(tx, group))


async def delete_group(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    group_id = path_id(request, "sshKeyGroupId", "SSH Key Group")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        group = await owned(tx, "sshkeygroup", group_id, "SSH Key Group", tenant_id=tenant.id)
        await tx.remove(group.id)
    return Response(status_code=202)


async def create_key(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    fields = Fields(await nico.body(request))
    name = fields.name()
    public_key = fields.string("publicKey", required=True, max_len=16384, pattern=PUBLIC_KEY)
    group_id = fields.uuid("sshKeyGroupId")
    print_ = fingerprint(public_key) if public_key is not None else None
    if public_key is not None and print_ is None:
        fields.errors["publicKey"] = "is not a valid SSH public key"
    fields.check("SSH Key creation request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        group = None
        if group_id is not None:
            group = await tx.get("sshkeygroup", group_id)
            if group is None or group.tenant_id != tenant.id:
                raise BadRequest("SSH Key Group does not exist", {"sshKeyGroupId": "unknown SSH Key Group"})
        key = Obj(
            id=new_id(),
            kind="sshkey",
            org=caller.org,
            status="Ready",
            tenant_id=tenant.id,
            name=name,
            unique_key=f"sshkey:{tenant.id}:{name}",
            doc={"name": name, "org": caller.org, "tenantId": tenant.id, "fingerprint": print_},
        )
        await tx.insert(key)
        if group is not None:
            group.doc = {**group.doc, "sshKeyIds": [*group.doc["sshKeyIds"], key.id], "version": secrets.token_hex(8)}
            await tx.save(group)
        return json((await rendered(tx, [key]))[0], 201)


async def list_keys(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    page = parse_page(request, ("name", "created", "updated"))
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        keys = query_filter(await tx.find("sshkey", tenant_id=tenant.id), request)
        group_id = request.query_params.get("sshKeyGroupId")
        if group_id:
            group = await tx.get("sshkeygroup", group_id) if is_uuid(group_id) else None
            members = set(group.doc["sshKeyIds"]) if group is not None and group.tenant_id == tenant.id else set()
            keys = [k for k in keys if k.id in members]
        items, header = page.apply(await rendered(tx, keys))
    return json(items, headers={"X-Pagination": header})


async def get_key(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    key_id = path_id(request, "sshKeyId", "SSH Key")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        key = await owned(tx, "sshkey", key_id, "SSH Key", tenant_id=tenant.id)
        return json((await rendered(tx, [key]))[0])


async def update_key(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    key_id = path_id(request, "sshKeyId", "SSH Key")
    fields = Fields(await nico.body(request, allow_empty=True))
    name = fields.name(required=False)
    fields.check("SSH Key update request")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        key = await owned(tx, "sshkey", key_id, "SSH Key", tenant_id=tenant.id)
        if name is not None:
            key.name, key.unique_key = name, f"sshkey:{tenant.id}:{name}"
            key.doc = {**key.doc, "name": name}
            await tx.save(key)
        return json((await rendered(tx, [key]))[0])


async def delete_key(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    key_id = path_id(request, "sshKeyId", "SSH Key")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        key = await owned(tx, "sshkey", key_id, "SSH Key", tenant_id=tenant.id)
        for group in await tx.find("sshkeygroup", tenant_id=tenant.id):
            if key.id in group.doc["sshKeyIds"]:
                group.doc = {
                    **group.doc,
                    "sshKeyIds": [i for i in group.doc["sshKeyIds"] if i != key.id],
                    "version": secrets.token_hex(8),
                }
                await tx.save(group)
        await tx.remove(key.id)
    return Response(status_code=202)
