"""What every NICo handler shares: the store, the site agent, the caller, rendering, ownership.

Ownership is the org isolation rule: provider-side objects carry the caller org's provider id,
tenant-side objects its tenant id, and every lookup filters on them; an object of another org
answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.tokens import TokenVerifier
from gateway.services.nico.agent import SiteAgent
from gateway.services.nico.errors import BadRequest, NotFound
from gateway.services.nico.inventory import Inventory
from gateway.services.nico.pagination import parse_page
from gateway.services.nico.roles import PROVIDER_ROLES, TENANT_ADMIN, Caller, authenticate
from gateway.services.nico.store import HistoryEntry, NicoStore, Obj, Tx
from gateway.services.nico.validation import is_uuid, read_body
from gateway.store.clock import rfc3339

# Kinds whose wire objects carry status and statusHistory.
WITH_STATUS = frozenset(
    {
        "tenant_account",
        "site",
        "ipblock",
        "allocation",
        "instance_type",
        "machine",
        "vpc",
        "vpc_prefix",
        "subnet",
        "os",
        "sshkeygroup",
        "instance",
    }
)


@dataclass(slots=True)
class Nico:
    store: NicoStore
    agent: SiteAgent
    inventory: Inventory
    verifier: TokenVerifier
    body_limit: int
    version: str

    async def caller(self, request: Request) -> Caller:
        """The request's caller, verified once: the role gate and the handler share it."""
        cached = getattr(request.state, "nico_caller", None)
        if isinstance(cached, Caller):
            return cached
        caller = await authenticate(request, self.verifier)
        request.state.nico_caller = caller
        return caller

    async def body(self, request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
        return await read_body(request, self.body_limit, allow_empty=allow_empty)


Handler = Callable[[Nico, Request], Awaitable[Response]]


def new_id() -> str:
    return str(uuid.uuid4())


def render(obj: Obj, history: Sequence[HistoryEntry] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"id": obj.id, **obj.doc}
    if obj.kind in WITH_STATUS:
        out["status"] = obj.status
        out["statusHistory"] = [
            {
                "status": h.status,
                "message": h.message,
                "created": rfc3339(h.created_at),
                "updated": rfc3339(h.created_at),
            }
            for h in history
        ]
    out["created"] = rfc3339(obj.created_at)
    out["updated"] = rfc3339(obj.updated_at)
    return out


async def rendered(tx: Tx, objs: Sequence[Obj]) -> list[dict[str, Any]]:
    histories = await tx.history([o.id for o in objs if o.kind in WITH_STATUS])
    return [render(o, histories.get(o.id, ())) for o in objs]


def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


async def one(tx: Tx, obj: Obj, status: int = 200) -> Response:
    return json((await rendered(tx, [obj]))[0], status)


async def listing(
    request: Request, tx: Tx, objs: Sequence[Obj], allowed: Sequence[str] = ("name", "status", "created", "updated")
) -> Response:
    page = parse_page(request, allowed)
    items, header = page.apply(await rendered(tx, objs))
    return json(items, headers={"X-Pagination": header})


def path_id(request: Request, name: str, what: str) -> str:
    value = str(request.path_params[name])
    if not is_uuid(value):
        raise BadRequest(f"Invalid {what} ID in URL: must be a UUID", {name: "must be a valid UUID"})
    return value.lower()


def query_uuid(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    if not is_uuid(value):
        raise BadRequest(f"Invalid {name} in query", {name: "must be a valid UUID"})
    return value.lower()


def query_filter(objs: list[Obj], request: Request, **fields: Callable[[Obj], Any]) -> list[Obj]:
    """Keep objects matching every given query parameter (repeatable: any of the values)."""
    for param, get in fields.items():
        wanted = request.query_params.getlist(param)
        if wanted:
            objs = [o for o in objs if str(get(o)) in wanted or str(get(o)).lower() in wanted]
    text = request.query_params.get("query")
    if text:
        needle = text.lower()
        objs = [
            o
            for o in objs
            if needle in (o.name or "").lower()
            or needle in str(o.doc.get("description") or "").lower()
            or needle in o.status.lower()
        ]
    return objs


async def provider_of(tx: Tx, caller: Caller, *, create: bool = True) -> Obj:
    """The caller org's infrastructure provider, created on first use as NICo does."""
    found = await tx.find("provider", org=caller.org)
    if found:
        return found[0]
    if not create:
        raise NotFound("Org does not have an Infrastructure Provider")
    return await tx.insert(
        Obj(
            id=new_id(),
            kind="provider",
            org=caller.org,
            status="Ready",
            name=caller.org,
            unique_key=f"provider:{caller.org}",
            doc={"org": caller.org, "orgDisplayName": caller.org},
        )
    )


async def tenant_of(tx: Tx, caller: Caller, *, create: bool = True) -> Obj:
    found = await tx.find("tenant", org=caller.org)
    if found:
        tenant = found[0]
        if caller.service_account and not tenant.doc["capabilities"]["targetedInstanceCreation"]:
            tenant.doc = {**tenant.doc, "capabilities": {"targetedInstanceCreation": True}}
            await tx.save(tenant)
        return tenant
    if not create:
        raise NotFound("Org does not have a Tenant")
    tenant = await tx.insert(
        Obj(
            id=new_id(),
            kind="tenant",
            org=caller.org,
            status="Ready",
            name=caller.org,
            unique_key=f"tenant:{caller.org}",
            doc={
                "org": caller.org,
                "orgDisplayName": caller.org,
                "capabilities": {"targetedInstanceCreation": caller.service_account},
            },
        )
    )
    # Invitations sent before the tenant existed now point at it.
    for account in await tx.find("tenant_account", name=caller.org, tenant_id=None):
        account.tenant_id = tenant.id
        account.doc = {**account.doc, "tenantId": tenant.id}
        await tx.save(account)
    return tenant


async def provider_side(tx: Tx, caller: Caller, write: bool) -> Obj:
    """The provider acting, after the role check: admin for writes, admin or viewer for reads."""
    if write:
        caller.require("PROVIDER_ADMIN")
    else:
        caller.require(*PROVIDER_ROLES)
    return await provider_of(tx, caller)


async def tenant_side(tx: Tx, caller: Caller) -> Obj:
    caller.require(TENANT_ADMIN)
    return await tenant_of(tx, caller)


def not_found(what: str) -> NotFound:
    return NotFound(f"Could not find {what} with specified ID")


def pick(objs: Sequence[Obj], object_id: str, what: str) -> Obj:
    """The object with ``object_id`` among those the caller may see, else NICo's 404."""
    for obj in objs:
        if obj.id == object_id:
            return obj
    raise not_found(what)


async def owned(tx: Tx, kind: str, object_id: str, what: str, **owner: str | None) -> Obj:
    obj = await tx.get(kind, object_id)
    if obj is None or any(getattr(obj, column) != value for column, value in owner.items()):
        raise not_found(what)
    return obj
