"""Overlapping status refreshes of one version: the status stored is the one the last event implies.

The interleaving is forced: a worker registers, and the refresh it triggers computes ACTIVE, then is
held just before it stores that; meanwhile the worker leaves and that refresh completes. Without
serialization the held ACTIVE is written last and the version claims ACTIVE with no instance.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.app import Gateway
from invoker.instances import LiveInstance
from tests.control.helpers import create_function, deployment_body


async def test_a_refresh_held_before_its_write_cannot_outlive_a_later_one(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = await create_function(api, admin)
    fid, vid = function["id"], function["versionId"]
    deployed = await api.post(
        f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", json=deployment_body(), headers=admin
    )
    assert deployed.status_code == 200, deployed.text
    catalog = gateway.runtime.catalog
    real_set_status = catalog.functions.set_status
    held, release = asyncio.Event(), asyncio.Event()

    async def set_status(version_id: str, status: str) -> None:
        if status == "ACTIVE" and not held.is_set():
            held.set()
            await release.wait()
        await real_set_status(version_id, status)

    monkeypatch.setattr(catalog.functions, "set_status", set_status)
    instances = gateway.runtime.instances
    arrival = asyncio.create_task(instances.register(LiveInstance("i-1", fid, vid)))
    await asyncio.wait_for(held.wait(), 10)
    departure = asyncio.create_task(instances.deregister("i-1"))
    await asyncio.sleep(0.2)  # let the departure's refresh run as far as it can
    release.set()
    await asyncio.wait_for(asyncio.gather(arrival, departure), 10)
    assert instances.count(vid) == 0
    version = await api.get(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=admin)
    assert version.status_code == 200, version.text
    assert version.json()["function"]["status"] == "DEGRADED"
