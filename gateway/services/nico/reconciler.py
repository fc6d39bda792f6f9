"""The site clock: moves sites and instances through their states with the site agent.

Each step: a Pending site the agent has paired becomes Registered with its machines (Error when no
inventory arrives within ``registration_steps``); an instance goes Pending → Provisioning → Ready,
and Terminating → gone (its machine back to Ready). Every transition re-reads the row under its
lock, so several gateway processes stepping at once apply each transition once.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.services.nico.agent import SiteAgent, site_machine_id
from gateway.services.nico.sites import machine_row
from gateway.services.nico.store import NicoStore
from gateway.store.clock import now_ms

log = logging.getLogger("gateway.nico")

NEXT_INSTANCE_STATE = {
    "Pending": ("Provisioning", "Machine is being provisioned"),
    "Provisioning": ("Ready", "Instance is ready"),
    "Rebooting": ("Ready", "Instance rebooted"),
}


class SiteClock:
    def __init__(self, store: NicoStore, agent: SiteAgent, step_ms: int, registration_steps: int = 60) -> None:
        self.store = store
        self.agent = agent
        self.step_ms = step_ms
        self.registration_timeout_ms = step_ms * registration_steps

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.step_ms / 1000)
            try:
                await self.step()
            except Exception:
                log.exception("NICo site clock step failed")

    async def step(self) -> None:
        async with self.store.read() as tx:
            sites = [s.id for s in await tx.find("site", status="Pending")]
            instances = [
                i.id for i in await tx.find("instance", status=["Pending", "Provisioning", "Rebooting", "Terminating"])
            ]
        for site_id in sites:
            await self._register(site_id)
        for instance_id in instances:
            await self._advance(instance_id)

    async def _register(self, site_id: str) -> None:
        async with self.store.write() as tx:
            await tx.lock(site_id)
            site = await tx.get("site", site_id)
            if site is None or site.status != "Pending":
                return
            machines = await self.agent.pair(site_id)
            if machines is None:
                if now_ms() - site.created_at >= self.registration_timeout_ms:
                    await tx.set_status(site, "Error", "Site agent did not send an inventory in time")
                return
            for machine in machines:
                row = machine_row(site, site_machine_id(site.id, machine.id), machine)
                await tx.insert(row, "Machine discovered by the site agent")
            site.doc = {
                **site.doc,
                "isOnline": True,
                "siteAgentVersion": "embedded",
                "siteControllerVersion": "embedded",
            }
            await tx.set_status(site, "Registered", "Site agent connected and sent its machine inventory")

    async def _advance(self, instance_id: str) -> None:
        async with self.store.write() as tx:
            await tx.lock(instance_id)
            instance = await tx.get("instance", instance_id)
            if instance is None:
                return
            machine_id = str(instance.doc.get("machineId"))
            if instance.status == "Terminating":
                await self.agent.release(str(instance.site_id), machine_id, instance.id)
                machine = await tx.get("machine", machine_id)
                if machine is not None:
                    machine.tenant_id = None
                    machine.doc = {**machine.doc, "instanceId": None, "tenantId": None}
                    await tx.set_status(machine, "Ready", "Machine released and sanitized")
                await tx.remove(instance.id)
                return
            nxt = NEXT_INSTANCE_STATE.get(instance.status)
            if nxt is None:
                return
            if instance.status == "Pending":
                await self.agent.provision(str(instance.site_id), machine_id, instance.id)
            if nxt[0] == "Ready":
                instance.doc = {
                    **instance.doc,
                    "interfaces": [{**i, "status": "Ready"} for i in instance.doc.get("interfaces") or []],
                }
            await tx.set_status(instance, *nxt)
