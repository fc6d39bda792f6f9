"""Who is calling the NVCT host: the credential as the tasks product sees it.

A JWT counts as it is (its ``scopes`` claim). An API key is authenticated as everywhere (the
shared credential cache: a deleted or expired key fails at once), then re-read through its
``nv-cloud-tasks`` policies (``principals.tasks_view``). The view is cached per key and rebuilt
whenever the shared cache produced a new principal for it (after a revocation or an
authorization change evicted the old one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from cext.hotpath import KIND_API_KEY, Principal
from gateway.access import required_principal
from gateway.auth.principals import tasks_view
from gateway.problems import Unauthorized

if TYPE_CHECKING:
    from gateway.runtime import Runtime

_MAX_VIEWS = 10_000


class TaskCredentials:
    def __init__(self) -> None:
        self._views: dict[str, tuple[Principal, Principal]] = {}

    async def __call__(self, request: Request, runtime: Runtime) -> Principal:
        base = await required_principal(request, runtime)
        if base.kind != KIND_API_KEY or base.key_id is None:
            return base
        cached = self._views.get(base.key_id)
        if cached is not None and cached[0] is base:
            return cached[1]
        record = await runtime.api_keys.get(base.key_id)
        if record is None:
            raise Unauthorized("Invalid API key")
        view = tasks_view(record, runtime.authorities)
        if len(self._views) >= _MAX_VIEWS:
            self._views.clear()
        self._views[base.key_id] = (base, view)
        return view
