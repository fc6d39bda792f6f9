"""Cross-account operator mirrors: the same operation under ``<prefix>/accounts/{ncaId}/…``.

NVCF's super-admin controllers (``XAccount*Controller``) answer each account-scoped endpoint again
under ``/v2/nvcf/accounts/{ncaId}/<same suffix>`` for a JWT holding ``admin:<scope>``, acting for
the account of the path instead of the caller's (404 for an account that does not exist).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.api.endpoint import Call, Endpoint
from gateway.problems import NotFound


def account_mirror(endpoint: Endpoint, prefix: str, *, tag: str) -> Endpoint:
    """``endpoint`` (under ``prefix``) for any account, as ``admin:<scope>`` JWTs call it."""
    handler = endpoint.handler

    async def mirrored(call: Call) -> Any:
        nca_id = call.path["ncaId"]
        if await call.runtime.accounts.get(nca_id) is None:
            raise NotFound(f"Unknown account '{nca_id}'")
        return await handler(dataclasses.replace(call, acting_for=nca_id))

    mirrored.__name__ = f"admin_{handler.__name__.strip('_')}"
    return dataclasses.replace(
        endpoint,
        path=f"{prefix}/accounts/{{ncaId}}{endpoint.path.removeprefix(prefix)}",
        handler=mirrored,
        summary=f"{endpoint.summary} (any account)",
        scopes=tuple(f"admin:{s}" for s in endpoint.scopes),
        jwt_only=True,
        tag=tag,
    )
