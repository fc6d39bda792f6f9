"""``/infrastructure-provider/current/stats`` and ``/tenant/current/stats``: counts by status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.services.nico.context import Nico, json, provider_side, tenant_side
from gateway.services.nico.store import Obj

# Wire key of each status in the *CountByStatus schemas (Machine InUse counts as "assigned").
MACHINE_KEYS = {
    "Initializing": "initializing",
    "Reset": "reset",
    "InUse": "assigned",
    "Ready": "ready",
    "Error": "error",
    "Decommissioned": "decommissioned",
    "Unknown": "unknown",
}


def by_status(objs: list[Obj], keys: tuple[str, ...], rename: dict[str, str] | None = None) -> dict[str, int]:
    counts = {"total": len(objs), **{key: 0 for key in keys}}
    for obj in objs:
        key = (rename or {}).get(obj.status, obj.status.lower())
        if key in counts and key != "total":
            counts[key] += 1
    return counts


async def provider_stats(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    async with nico.store.write() as tx:
        provider = await provider_side(tx, caller, write=False)
        machines = await tx.find("machine", provider_id=provider.id)
        blocks = await tx.find("ipblock", provider_id=provider.id, tenant_id=None)
        accounts = await tx.find("tenant_account", provider_id=provider.id)
    return json(
        {
            "machine": by_status(machines, tuple(MACHINE_KEYS.values()), MACHINE_KEYS),
            "ipBlock": by_status(blocks, ("pending", "provisioning", "ready", "deleting", "error")),
            "tenantAccount": by_status(accounts, ("pending", "invited", "ready", "error")),
        }
    )


async def tenant_stats(nico: Nico, request: Request) -> Response:
    caller = await nico.caller(request)
    common = ("pending", "provisioning", "ready", "deleting", "error")
    async with nico.store.write() as tx:
        tenant = await tenant_side(tx, caller)
        instances = await tx.find("instance", tenant_id=tenant.id)
        vpcs = await tx.find("vpc", tenant_id=tenant.id)
        subnets = await tx.find("subnet", tenant_id=tenant.id)
    return json(
        {
            "instance": by_status(instances, ("pending", "provisioning", "ready", "terminating", "error")),
            "vpc": by_status(vpcs, common),
            "subnet": by_status(subnets, common),
        }
    )
