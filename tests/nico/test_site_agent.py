"""The embedded site agent: an operator's inventory file through ``cfgate serve``, a refused
inventory, paging over its machines, and a site whose agent never connects (Pending → Error)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.services.nico.agent import EmbeddedSiteAgent
from gateway.services.nico.inventory import InventoryError, InventoryMachine, load_inventory, parse_inventory
from gateway.services.nico.reconciler import SiteClock
from gateway.services.nico.store import NicoStore, Obj
from gateway.store import open_store
from tests.nico.conftest import ServeFactory
from tests.nico.test_flows import listed
from tests.servers import find_free_port

INVENTORY = {
    "site": {"name": "edge-dc", "capabilities": {"nativeNetworking": True}},
    "machines": [
        {
            "id": f"b200-{i}",
            "vendor": "NVIDIA",
            "productName": "HGX B200",
            "serialNumber": f"SN{i}",
            "capabilities": [{"type": "GPU", "name": "NVIDIA B200", "count": 8}],
            "interfaces": [{"macAddress": f"02:00:00:00:10:0{i}"}],
        }
        for i in range(1, 4)
    ],
}


def test_inventory_file_feeds_the_co_located_site(serve: ServeFactory, tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(INVENTORY))
    served = serve("--nico-inventory", str(path))
    sa = served.client("edge", served.token("edge", service_account=True))
    sa.ok("GET", "/service-account/current")
    (site,) = listed(sa, "/site")
    site = sa.wait_for(f"/site/{site['id']}", "Registered")
    assert site["name"] == "edge-dc" and site["capabilities"]["nativeNetworking"] is True
    machines = listed(sa, "/machine", orderBy="ID_ASC")
    assert sorted(m["serialNumber"] for m in machines) == ["SN1", "SN2", "SN3"]
    assert {m["productName"] for m in machines} == {"HGX B200"}
    assert all(m["machineCapabilities"] == [{"type": "GPU", "name": "NVIDIA B200", "count": 8}] for m in machines)
    first = sa.call("GET", "/machine", pageSize=2, pageNumber=2, orderBy="ID_ASC")
    assert first.headers["X-Pagination"] == '{"pageNumber":2,"pageSize":2,"total":3,"orderBy":"ID_ASC"}'
    assert [m["id"] for m in first.json()] == [sorted(m["id"] for m in machines)[2]]


def test_a_bad_inventory_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"machines": [{"id": "a"}, {"id": "a"}]}))
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--port",
        str(find_free_port()),
        "--grpc-port",
        "0",
        "--worker-port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        "--nico-inventory",
        str(path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "machine id 'a' appears twice" in result.stdout + result.stderr


def test_inventory_shapes() -> None:
    assert len(load_inventory(None).machines) == 4
    bad: object
    for bad in (
        [],
        {"machines": {}},
        {"machines": [{"id": 5}]},
        {"machines": [{"id": "m", "capabilities": [{"type": "TPU", "name": "x"}]}]},
        {"site": {"capabilities": {"warp": True}}, "machines": []},
    ):
        with pytest.raises(InventoryError):
            parse_inventory(bad)


class OfflineAgent(EmbeddedSiteAgent):
    """A site whose agent never connects: the seam's other answer (no inventory yet)."""

    async def pair(self, site_id: str) -> list[InventoryMachine] | None:
        return None


async def test_site_without_agent_goes_from_pending_to_error(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'nico.db'}")
    try:
        nico = NicoStore(store.engine)
        async with nico.write() as tx:
            await tx.insert(
                Obj(
                    id="00000000-0000-4000-8000-000000000001",
                    kind="site",
                    org="acme",
                    status="Pending",
                    doc={"capabilities": {}},
                ),
                "created",
            )
        clock = SiteClock(nico, OfflineAgent(load_inventory(None)), step_ms=10, registration_steps=0)
        await clock.step()
        async with nico.read() as tx:
            site = await tx.get("site", "00000000-0000-4000-8000-000000000001")
            assert site is not None and site.status == "Error"
            assert await tx.count("machine") == 0
            history = (await tx.history([site.id]))[site.id]
        assert [h.status for h in history] == ["Error", "Pending"]
    finally:
        await store.close()
