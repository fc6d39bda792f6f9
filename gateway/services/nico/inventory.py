"""The embedded site's machine inventory: ``--nico-inventory FILE`` (JSON) or a small default.

Format::

    {"site": {"name": "local-site", "capabilities": {"nativeNetworking": false}},
     "machines": [{"id": "gpu-node-01", "vendor": "NVIDIA", "productName": "DGX H100",
                   "serialNumber": "SN-01", "controllerMachineType": "x86_64",
                   "capabilities": [{"type": "GPU", "name": "NVIDIA H100 80GB", "count": 8}],
                   "interfaces": [{"macAddress": "02:00:00:00:01:01"}]}]}

``site`` describes the co-located site that service-account mode creates; every site paired with
the embedded agent gets its own copy of ``machines`` (ids made unique per site).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CAPABILITY_TYPES = ("CPU", "Memory", "Storage", "Network", "GPU", "InfiniBand", "DPU")
SITE_CAPABILITIES = ("nativeNetworking", "networkSecurityGroup", "nvLinkPartition", "flow", "imageBasedOperatingSystem")


class InventoryError(ValueError):
    """The inventory file cannot be read or is not of the documented shape."""


@dataclass(frozen=True, slots=True)
class InventoryMachine:
    id: str
    vendor: str | None
    product_name: str | None
    serial_number: str | None
    machine_type: str | None
    capabilities: tuple[dict[str, Any], ...]
    interfaces: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Inventory:
    site_name: str
    site_capabilities: dict[str, bool]
    machines: tuple[InventoryMachine, ...]


def _gpu_machine(index: int) -> dict[str, Any]:
    return {
        "id": f"gpu-node-{index:02d}",
        "vendor": "NVIDIA",
        "productName": "DGX H100",
        "serialNumber": f"CFGATE-SN-{index:04d}",
        "controllerMachineType": "x86_64",
        "capabilities": [
            {"type": "CPU", "name": "Intel(R) Xeon(R) Platinum 8480C", "frequency": "2.0GHz", "count": 2},
            {"type": "Memory", "name": "DDR5", "capacity": "2048GB", "count": 32},
            {"type": "GPU", "name": "NVIDIA H100 80GB HBM3", "capacity": "80GB", "count": 8},
        ],
        "interfaces": [{"macAddress": f"02:00:00:00:00:{index:02x}"}],
    }


DEFAULT_INVENTORY: dict[str, Any] = {
    "site": {"name": "local-site", "capabilities": {"nativeNetworking": False}},
    "machines": [_gpu_machine(i) for i in range(1, 5)],
}


def parse_inventory(raw: object) -> Inventory:
    if not isinstance(raw, dict):
        raise InventoryError("the inventory must be a JSON object with 'machines'")
    site = raw.get("site") or {}
    machines = raw.get("machines")
    if not isinstance(site, dict) or not isinstance(machines, list):
        raise InventoryError("'site' must be an object and 'machines' an array")
    name = site.get("name", "local-site")
    capabilities = site.get("capabilities") or {}
    if not isinstance(name, str) or not 2 <= len(name) <= 256 or not isinstance(capabilities, dict):
        raise InventoryError("site.name must be 2-256 characters and site.capabilities an object")
    if any(k not in SITE_CAPABILITIES or not isinstance(v, bool) for k, v in capabilities.items()):
        raise InventoryError(f"site.capabilities takes booleans for {', '.join(SITE_CAPABILITIES)}")
    parsed: list[InventoryMachine] = []
    seen: set[str] = set()
    for index, machine in enumerate(machines):
        if not isinstance(machine, dict) or not isinstance(machine.get("id"), str) or not machine["id"]:
            raise InventoryError(f"machines[{index}] needs a string 'id'")
        if machine["id"] in seen:
            raise InventoryError(f"machine id {machine['id']!r} appears twice")
        seen.add(machine["id"])
        caps = machine.get("capabilities") or []
        nics = machine.get("interfaces") or []
        if not isinstance(caps, list) or not all(
            isinstance(c, dict) and c.get("type") in CAPABILITY_TYPES and isinstance(c.get("name"), str) for c in caps
        ):
            raise InventoryError(
                f"machines[{index}].capabilities: each needs a 'type' ({'|'.join(CAPABILITY_TYPES)}) and a 'name'"
            )
        if not isinstance(nics, list) or not all(isinstance(n, dict) for n in nics):
            raise InventoryError(f"machines[{index}].interfaces must be an array of objects")

        def text(key: str, m: dict[str, Any] = machine) -> str | None:
            value = m.get(key)
            return value if isinstance(value, str) else None

        parsed.append(
            InventoryMachine(
                id=machine["id"],
                vendor=text("vendor"),
                product_name=text("productName"),
                serial_number=text("serialNumber"),
                machine_type=text("controllerMachineType"),
                capabilities=tuple(dict(c) for c in caps),
                interfaces=tuple(dict(n) for n in nics),
            )
        )
    return Inventory(name, {k: bool(v) for k, v in capabilities.items()}, tuple(parsed))


def load_inventory(path: str | None) -> Inventory:
    if path is None:
        return parse_inventory(DEFAULT_INVENTORY)
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InventoryError(f"cannot read the NICo inventory {path}: {exc}") from exc
    return parse_inventory(raw)
