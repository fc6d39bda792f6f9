"""The site agent seam, and the embedded agent that stands in for NICo Core on this machine.

A real deployment reaches each site through its site agent (Temporal workflows to Core gRPC). Here
``SiteAgent`` is that boundary: ``pair`` is the agent's first inventory push (the site becomes
Registered), ``provision`` / ``release`` carry out an instance on a machine. ``EmbeddedSiteAgent``
answers from the inventory file; a real site connection would implement the same three calls.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from gateway.services.nico.inventory import Inventory, InventoryMachine


class SiteAgent(Protocol):
    async def pair(self, site_id: str) -> list[InventoryMachine] | None:
        """The site's machines once its agent has connected; None while it has not."""

    async def provision(self, site_id: str, machine_id: str, instance_id: str) -> None:
        """Start installing the instance's OS on the machine."""

    async def release(self, site_id: str, machine_id: str, instance_id: str) -> None:
        """Tear the instance down and sanitise the machine."""


def site_machine_id(site_id: str, inventory_id: str) -> str:
    """A Core-style opaque machine id, unique per site (each paired site gets its own copy)."""
    digest = hashlib.sha256(f"{site_id}/{inventory_id}".encode()).hexdigest()[:40]
    return f"fm100h{digest}"


class EmbeddedSiteAgent:
    """Every site pairs at once and owns a copy of the inventory's machines."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory

    async def pair(self, site_id: str) -> list[InventoryMachine] | None:
        return list(self.inventory.machines)

    async def provision(self, site_id: str, machine_id: str, instance_id: str) -> None:
        return None

    async def release(self, site_id: str, machine_id: str, instance_id: str) -> None:
        return None
