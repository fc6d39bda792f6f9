"""NGC-style clients (NVIDIA's ``ngcsdk`` / ``ngc cf``) on the api host.

``ngcsdk`` addresses NVCF through NGC's org paths and asks NGC about its credentials first:

* ``/v2/orgs/{org}[/teams/{team}]/nvcf/…``: every ``/v2/nvcf/…`` endpoint again, **org = the
  caller's account** (``ncaId``); another org is 404 (existence is not disclosed). cfgate has no
  teams: any team name is accepted and ignored. NVCT's ``/v1/nvct/tasks…`` likewise answers as
  ``/v2/orgs/{org}/nvct/tasks…`` (``gateway.services.tasks``).
* ``POST /v3/keys/get-caller-info`` (form ``credentials=<nvapi-key>``, no bearer): what the key is,
  before ``configure()`` uses it. cfgate answers for its own API keys ``{"type": "SERVICE_KEY",
  "orgName": <ncaId>, …}`` (a service key, so ngcsdk skips NGC's user/org look-ups); an unknown,
  revoked or expired key is 401.
* ``GET /v2/orgs`` (``configure()`` with a JWT and an org): the caller's one account as
  ``{"organizations": [{"name", "displayName"}], "paginationInfo"}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cext.hotpath import KIND_API_KEY
from gateway.api import Call, Endpoint
from gateway.api.models import ApiModel
from gateway.auth.scopes import ALL_SCOPES, FUNCTIONS_PRODUCT
from gateway.http import JSONResponse, read_body
from gateway.problems import BadRequest, NotFound, Unauthorized
from gateway.runtime import Runtime

__all__ = ["ENDPOINTS", "extra_routes", "org_alias"]

ORG = "/v2/orgs/{org}"
TEAM = ORG + "/teams/{team}"
_CALLER_INFO_LIMIT = 8192
# Any credential of the account (functions or tasks scopes) may ask which org it belongs to.
_ANY_SCOPE = ALL_SCOPES


def org_alias(endpoint: Endpoint, *, team: bool) -> Endpoint:
    """``endpoint`` (a ``/v2/<service>/…`` path) under NGC's org (and team) prefix."""
    handler = endpoint.handler

    async def aliased(call: Call) -> Any:
        org = call.path["org"]
        if org != call.nca_id:
            raise NotFound(f"Organization '{org[:64]}' not found")
        return await handler(call)

    aliased.__name__ = f"{'org_team' if team else 'org'}_{handler.__name__.strip('_')}"
    return dataclasses.replace(
        endpoint,
        path=(TEAM if team else ORG) + endpoint.path.removeprefix("/v2").removeprefix("/v1"),
        handler=aliased,
        summary=f"{endpoint.summary} (NGC org path)",
        tag="ngc",
    )


def org_aliases(endpoints: list[Endpoint], *, teams: bool = True) -> list[Endpoint]:
    aliases = [org_alias(e, team=False) for e in endpoints]
    if teams:
        aliases += [org_alias(e, team=True) for e in endpoints]
    return aliases


class Organization(ApiModel):
    name: str
    displayName: str


class PaginationInfo(ApiModel):
    index: int
    size: int
    totalResults: int
    totalPages: int


class OrganizationList(ApiModel):
    organizations: list[Organization]
    paginationInfo: PaginationInfo


async def list_orgs(call: Call) -> OrganizationList:
    account = await call.runtime.accounts.get(call.nca_id)
    name = account.name if account is not None else call.nca_id
    return OrganizationList(
        organizations=[Organization(name=call.nca_id, displayName=name)],
        paginationInfo=PaginationInfo(index=0, size=1, totalResults=1, totalPages=1),
    )


ENDPOINTS = [
    Endpoint("GET", "/v2/orgs", list_orgs, "The caller's organization (its account), as NGC lists orgs",
             _ANY_SCOPE, response=OrganizationList, tag="ngc"),
]  # fmt: skip


def extra_routes(runtime: Runtime) -> list[Route]:
    """``POST /v3/keys/get-caller-info``: outside the endpoint table (a form body, no bearer)."""

    async def get_caller_info(request: Request) -> Response:
        form = parse_qs((await read_body(request, _CALLER_INFO_LIMIT)).decode("latin-1"))
        credentials = form.get("credentials") or []
        if len(credentials) != 1 or not credentials[0]:
            raise BadRequest("Form field 'credentials' is required")
        principal = await runtime.authenticator.authenticate(credentials[0].encode("latin-1"))
        if principal.kind != KIND_API_KEY:
            raise Unauthorized("Unauthorized access")
        return JSONResponse(
            {
                "requestStatus": {"statusCode": "SUCCESS"},
                "type": "SERVICE_KEY",
                "orgName": principal.nca_id,
                "keyId": principal.key_id,
                "products": [FUNCTIONS_PRODUCT],
            }
        )

    return [Route("/v3/keys/get-caller-info", get_caller_info, methods=["POST"])]
