"""Overlapping reloads of one function's route: the newest snapshot read is the one that stays.

The interleaving behind "ACTIVE, then 'no ACTIVE version'" is forced, not hoped for: the store's
``versions`` query of the first reload is held (after it read its snapshot) until a second,
later reload has finished. Without ordering, the held, older snapshot is written last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from gateway.app import Gateway
from gateway.store.functions import FunctionVersion
from tests.control.helpers import create_function, deployment_body

Snapshot = list[FunctionVersion]


def hold_reload_that_reads(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, matches: Callable[[Snapshot], bool]
) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the first ``versions`` query whose snapshot ``matches`` until ``release`` is set.

    Returns (``held``: that query has read its snapshot, ``release``)."""
    repository = gateway.runtime.catalog.functions
    real = repository.versions
    held, release = asyncio.Event(), asyncio.Event()

    async def versions(function_id: str) -> Snapshot:
        snapshot = await real(function_id)
        if not held.is_set() and matches(snapshot):
            held.set()
            await release.wait()
        return snapshot

    monkeypatch.setattr(repository, "versions", versions)
    return held, release


async def test_a_reload_that_started_earlier_cannot_overwrite_a_later_one(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = await create_function(api, admin)
    fid, vid = function["id"], function["versionId"]
    held, release = hold_reload_that_reads(
        gateway, monkeypatch, lambda snapshot: any(v.status == "DEPLOYING" for v in snapshot)
    )
    # The deploy's reload reads DEPLOYING and is held there ...
    deploy = asyncio.create_task(
        api.post(f"/v2/nvcf/deployments/functions/{fid}/versions/{vid}", json=deployment_body(), headers=admin)
    )
    await asyncio.wait_for(held.wait(), 10)
    # ... while the version turns ACTIVE (a worker registered) and that reload completes.
    await gateway.runtime.catalog.functions.set_status(vid, "ACTIVE")
    await gateway.runtime.routes.refresh(fid)
    release.set()
    response = await deploy
    assert response.status_code == 200, response.text
    route = gateway.runtime.routes.get(fid)
    assert route is not None
    assert route.versions[vid].status == "ACTIVE"
    assert [v.version_id for v in route.invocable_versions()] == [vid]


async def test_an_older_reload_cannot_bring_back_a_deleted_function(
    api: httpx.AsyncClient, admin: dict[str, str], gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = await create_function(api, admin)
    fid, vid = function["id"], function["versionId"]
    held, release = hold_reload_that_reads(gateway, monkeypatch, lambda snapshot: bool(snapshot))
    stale = asyncio.create_task(gateway.runtime.routes.refresh(fid))
    await asyncio.wait_for(held.wait(), 10)
    response = await api.delete(f"/v2/nvcf/functions/{fid}/versions/{vid}", headers=admin)
    assert response.status_code == 204, response.text
    assert gateway.runtime.routes.get(fid) is None
    release.set()
    await stale
    assert gateway.runtime.routes.get(fid) is None
    assert len(gateway.runtime.routes) == 0
