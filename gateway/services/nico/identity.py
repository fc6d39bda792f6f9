"""Metadata, the current user, service account, infrastructure provider, tenant and tenant accounts."""

from __future__ import annotations

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
    path_id,
    pick,
    provider_of,
    provider_side,
    query_filter,
    query_uuid,
    render,
    tenant_of,
)
from gateway.services.nico.errors import BadRequest, Forbidden
from gateway.services.nico.roles import PROVIDER_ADMIN, PROVIDER_ROLES, TENANT_ADMIN, Caller
from gateway.services.nico.sites import create_site_row
from gateway.services.nico.store import Obj, Tx
from gateway.services.nico.validation import Fields

TENANT_ORG = r"^[A-Za-z0-9-_]+$"


async def get_metadata(nico: Nico, request: Request) -> Response:
    await nico.caller(request)
    return json({"version": nico.version, "buildTime": "embedded"})


async def user_of(tx: Tx, caller: Caller) -> Obj:
    found = await tx.find("user", name=caller.subject)
    doc = {"email": caller.email, "firstName": caller.first_name, "lastName": caller.last_name}
    if found:
        user = found[0]
        if user.doc != doc:
            user.doc = doc
            await tx.save(user)
        return user
    return await tx.insert(
        Obj(
            id=new_id(),
            kind="user",
            org=caller.org,
            status="Ready",
            name=caller.subject,
            unique_key=f"user:{caller.subject}",
            doc=doc,
        )
    )


async def get_current_user(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    async with nico.store.write() as tx:
        return json(render(await user_of(tx, caller)))


async def get_service_account(nico: Nico, request: Request) -> Response:
    """Service-account mode bootstraps provider, privileged tenant, Ready account and the site."""
    caller = await nico.caller(request)
    if not caller.service_account:
        return json({"enabled": False, "infrastructureProviderId": None, "tenantId": None})
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        await tx.lock(provider.id)
        tenant = await tenant_of(tx, caller)
        accounts = await tx.find("tenant_account", provider_id=provider.id, name=caller.org)
        if not accounts:
            account = _account(provider, caller.org)
            account.tenant_id = tenant.id
            account.doc["tenantId"] = tenant.id
            account.status = "Ready"
            await tx.insert(account, "Service Account mode: Tenant Account is ready")
        if not await tx.count("site", provider_id=provider.id):
            inventory = nico.inventory
            await create_site_row(
                tx,
                provider,
                {"name": inventory.site_name, "description": "Co-located site (embedded site agent)"},
                inventory.site_capabilities,
            )
    return json({"enabled": True, "infrastructureProviderId": provider.id, "tenantId": tenant.id})


async def get_current_provider(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    async with nico.store.write() as tx:
        return json(render(await provider_side(tx, caller, write=False)))


async def get_current_tenant(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    async with nico.store.write() as tx:
        return json(render(await tenant_of(tx, caller)))


def _account(provider: Obj, tenant_org: str) -> Obj:
    return Obj(
        id=new_id(),
        kind="tenant_account",
        org=provider.org,
        status="Invited",
        provider_id=provider.id,
        name=tenant_org,
        unique_key=f"tenant_account:{provider.id}:{tenant_org}",
        doc={
            "infrastructureProviderId": provider.id,
            "infrastructureProviderOrg": provider.org,
            "tenantId": None,
            "tenantOrg": tenant_org,
            "allocationCount": 0,
        },
    )


async def _account_view(tx: Tx, account: Obj) -> Obj:
    account.doc = {
        **account.doc,
        "allocationCount": await tx.count("allocation", provider_id=account.provider_id, tenant_id=account.tenant_id)
        if account.tenant_id
        else 0,
    }
    return account


async def create_tenant_account(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    fields = Fields(await nico.body(request))
    provider_id = fields.uuid("infrastructureProviderId", required=True)
    tenant_org = fields.string("tenantOrg", required=True, min_len=1, max_len=256, pattern=TENANT_ORG)
    fields.check("Tenant Account creation request")
    assert provider_id is not None and tenant_org is not None
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        if provider_id != provider.id:
            raise BadRequest(
                "infrastructureProviderId does not match the org's Infrastructure Provider",
                {"infrastructureProviderId": "must be the current org's Infrastructure Provider"},
            )
        existing = await tx.find("tenant_account", provider_id=provider.id, name=tenant_org.lower())
        if existing:
            raise BadRequest("Tenant Account already exists for this Tenant org", {"id": existing[0].id})
        account = _account(provider, tenant_org.lower())
        tenants = await tx.find("tenant", org=tenant_org.lower())
        if tenants:
            account.tenant_id = tenants[0].id
            account.doc["tenantId"] = tenants[0].id
        await tx.insert(account, "Request received, pending Tenant acceptance")
        return await one(tx, account, 201)


async def _visible_accounts(tx: Tx, caller: Caller) -> list[Obj]:
    found: dict[str, Obj] = {}
    if caller.has(*PROVIDER_ROLES):
        provider = await provider_of(tx, caller)
        found.update({a.id: a for a in await tx.find("tenant_account", provider_id=provider.id)})
    if caller.has(TENANT_ADMIN):
        found.update({a.id: a for a in await tx.find("tenant_account", name=caller.org)})
    return list(found.values())


def _require_side(request: Request) -> tuple[str | None, str | None]:
    provider_id, tenant_id = query_uuid(request, "infrastructureProviderId"), query_uuid(request, "tenantId")
    if provider_id is None and tenant_id is None:
        raise BadRequest("Either infrastructureProviderId or tenantId query param must be specified")
    return provider_id, tenant_id


async def list_tenant_accounts(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    provider_id, tenant_id = _require_side(request)
    async with nico.store.write() as tx:
        accounts = [
            a
            for a in await _visible_accounts(tx, caller)
            if (provider_id is None or a.provider_id == provider_id) and (tenant_id is None or a.tenant_id == tenant_id)
        ]
        accounts = query_filter(accounts, request, status=lambda o: o.status)
        return await listing(request, tx, [await _account_view(tx, a) for a in accounts])


async def _visible_account(tx: Tx, caller: Caller, account_id: str) -> Obj:
    return await _account_view(tx, pick(await _visible_accounts(tx, caller), account_id, "Tenant Account"))


async def get_tenant_account(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(*PROVIDER_ROLES, TENANT_ADMIN)
    account_id = path_id(request, "accountId", "Tenant Account")
    async with nico.store.write() as tx:
        return await one(tx, await _visible_account(tx, caller, account_id))


async def accept_tenant_account(nico: Nico, request: Request) -> Response:
    """The tenant accepts the invitation: Invited → Ready, the caller becomes the contact."""
    caller = await nico.caller(request)
    caller.require(TENANT_ADMIN)
    account_id = path_id(request, "accountId", "Tenant Account")
    await nico.body(request, allow_empty=True)
    async with nico.store.write() as tx:
        account = await tx.get("tenant_account", account_id)
        if account is None or account.name != caller.org:
            raise not_found("Tenant Account")
        if account.status != "Invited":
            raise BadRequest("Tenant Account status is not Invited")
        tenant = await tenant_of(tx, caller)
        user = await user_of(tx, caller)
        account.tenant_id = tenant.id
        contact: dict[str, Any] = render(user)
        account.doc = {**account.doc, "tenantId": tenant.id, "tenantContact": contact}
        await tx.set_status(account, "Ready", "Account ready, Tenant accepted invite")
        return await one(tx, await _account_view(tx, account))


async def delete_tenant_account(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    caller.require(PROVIDER_ADMIN)
    account_id = path_id(request, "accountId", "Tenant Account")
    async with nico.store.write() as tx:
        provider = await provider_of(tx, caller)
        account = await tx.get("tenant_account", account_id)
        if account is None or account.provider_id != provider.id:
            raise not_found("Tenant Account")
        if account.tenant_id and await tx.count("allocation", provider_id=provider.id, tenant_id=account.tenant_id):
            raise Forbidden("Tenant Account has Allocations which must be deleted first")
        await tx.remove(account.id)
    return Response(status_code=202)
