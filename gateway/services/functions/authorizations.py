"""``/v2/nvcf/authorizations/functions…``: share a function (or one version) with other accounts.

Behaviour follows NVCF's ``AuthorizedPartiesController``/``AuthorizedPartiesFacade``/
``AuthorizedPartiesService`` (``rest/azp``, ``service/azp``):

* Only the owner may share. A function that is not the caller's own, including one shared *with*
  the caller, is 404 ("Not found in account"), as NVCF's ``validateNcaId`` answers.
* ``POST`` replaces the set; ``PATCH …/add`` on a function (or version) with no parties yet is 404
  ("Does not have any authorized parties to be patched"), adding a party already there is 409;
  ``PATCH …/remove`` of a party not there is 404.
* ``DELETE`` answers **200** with ``{"function": {id, ncaId[, versionId]}}`` (no
  ``authorizedParties``), exactly as NVCF (the one DELETE of the API with a body).
* ``ncaId: "*"`` (make public) is 400 (super admin only); sharing with the caller's own account, an
  unknown account, or a ``clientId`` that is not a client of that account is 400. A public
  function's parties cannot be changed (400).
* Function-level answers carry no ``versionId`` and list function-level parties only; version
  answers of POST/PATCH/DELETE list that version's own parties; ``GET`` of a version (and the
  per-version lists) merge function-level and version-level parties, as NVCF does.
* NVCF keeps accounts only (a set of NCA ids); we store the validated ``clientId`` too and echo it,
  but a party is identified by its ``ncaId``. Parties are listed sorted by ``ncaId``.

Every change refreshes the routing cache of the function.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.access import key_may_use
from gateway.api import Call, Endpoint
from gateway.problems import BadRequest, Conflict, NotFound
from gateway.services.functions.sharing_models import (
    AuthorizedPartiesDto,
    AuthorizedPartiesRequest,
    AuthorizedPartiesResponse,
    AuthorizedParty,
    ListAuthorizedPartiesResponse,
    PatchAuthorizedPartyRequest,
)
from gateway.store.functions import FUNCTION_LEVEL, Authorization, FunctionVersion

WILDCARD = "*"
SCOPES = ("authorize_clients",)


def _target(function_id: str, version_id: str) -> str:
    if version_id == FUNCTION_LEVEL:
        return f"Function id '{function_id}'"
    return f"Function id '{function_id}', version '{version_id}'"


async def _owned(call: Call, version_id: str = FUNCTION_LEVEL) -> list[FunctionVersion]:
    """The function's versions when the caller owns it (404 otherwise, even if shared with the caller)."""
    function_id = call.path["functionId"]
    versions = await call.runtime.catalog.functions.versions(function_id)
    if not versions or versions[0].nca_id != call.nca_id:
        raise NotFound(f"{_target(function_id, version_id)}: Not found in account '{call.nca_id}'")
    if version_id != FUNCTION_LEVEL and not any(v.version_id == version_id for v in versions):
        raise NotFound(f"{_target(function_id, version_id)}: Not found in account '{call.nca_id}'")
    return versions


def _not_public(versions: Sequence[FunctionVersion], version_id: str, operation: str) -> None:
    function_id = versions[0].function_id
    public = any(v.public for v in versions if version_id in (FUNCTION_LEVEL, v.version_id))
    if public:
        raise BadRequest(
            f"{_target(function_id, version_id)}: Cannot {operation} authorized parties for public function"
        )


async def _validate_party(call: Call, party: AuthorizedParty) -> None:
    if party.ncaId == call.nca_id:
        raise BadRequest(f"Invalid request: Authorized party mapped to account '{call.nca_id}' is invalid")
    accounts = call.runtime.accounts
    if party.clientId and party.clientId.strip():
        client = await accounts.by_admin_client(party.clientId)
        if client is None:
            raise BadRequest(f"Client '{party.clientId}' not found")
        if client.nca_id != party.ncaId:
            raise BadRequest(
                f"Invalid request: Account '{party.ncaId}' and client '{party.clientId}' are not setup with each other"
            )
    if await accounts.get(party.ncaId) is None:
        raise BadRequest(f"Account '{party.ncaId}' not found")


def _parties(*groups: Sequence[Authorization]) -> list[AuthorizedParty]:
    """Parties of each group sorted by account (NVCF keeps sets), groups in order, each account once."""
    seen: dict[str, AuthorizedParty] = {}
    for shares in groups:
        for share in sorted(shares, key=lambda s: (s.nca_id, s.client_id)):
            seen.setdefault(share.nca_id, AuthorizedParty(ncaId=share.nca_id, clientId=share.client_id or None))
    return list(seen.values())


def _rows(parties: Sequence[AuthorizedParty]) -> list[tuple[str, str]]:
    unique: dict[str, str] = {}
    for party in parties:
        unique.setdefault(party.ncaId, (party.clientId or "").strip())
    return list(unique.items())


def _dto(
    versions: Sequence[FunctionVersion], version_id: str, parties: list[AuthorizedParty] | None
) -> AuthorizedPartiesResponse:
    return AuthorizedPartiesResponse(
        function=AuthorizedPartiesDto(
            id=versions[0].function_id,
            ncaId=versions[0].nca_id,
            versionId=version_id or None,
            authorizedParties=parties,
        )
    )


def _merged(version: FunctionVersion, shares: Sequence[Authorization]) -> AuthorizedPartiesDto:
    """A version's parties: function-level first, then its own (NVCF's ``mergeAuthorizedParties``)."""
    function_level = [s for s in shares if s.version_id == FUNCTION_LEVEL]
    own = [s for s in shares if s.version_id == version.version_id]
    return AuthorizedPartiesDto(
        id=version.function_id,
        ncaId=version.nca_id,
        versionId=version.version_id,
        authorizedParties=_parties(function_level, own),
    )


async def _replace(call: Call, version_id: str) -> AuthorizedPartiesResponse:
    request: AuthorizedPartiesRequest = call.body
    function_id = call.path["functionId"]
    if any(p.ncaId == WILDCARD for p in request.authorizedParties):
        raise BadRequest(f"{_target(function_id, version_id)}: Only NVIDIA Super Admin can make a function public")
    versions = await _owned(call, version_id)
    _not_public(versions, version_id, "create")
    for party in request.authorizedParties:
        await _validate_party(call, party)
    authorizations = call.runtime.catalog.authorizations
    await authorizations.replace(function_id, version_id, _rows(request.authorizedParties))
    await call.runtime.routes.refresh(function_id)
    return _dto(versions, version_id, _parties(await authorizations.list(function_id, version_id)))


async def _patch(call: Call, version_id: str, *, add: bool) -> AuthorizedPartiesResponse:
    request: PatchAuthorizedPartyRequest = call.body
    function_id = call.path["functionId"]
    operation = "add" if add else "remove"
    versions = await _owned(call, version_id)
    _not_public(versions, version_id, operation)
    party = request.authorizedParty
    target = _target(function_id, version_id)
    if party.ncaId == WILDCARD:
        raise BadRequest(f"{target}: Invalid authz account '{WILDCARD}' specified for {operation} operation")
    await _validate_party(call, party)
    authorizations = call.runtime.catalog.authorizations
    current = _parties(await authorizations.list(function_id, version_id))
    if not current:
        raise NotFound(f"{target}: Does not have any authorized parties to be patched")
    present = any(p.ncaId == party.ncaId for p in current)
    what = "function" if version_id == FUNCTION_LEVEL else "function version"
    if add and present:
        raise Conflict(f"{target}: Account '{party.ncaId}' is already authorized to access the {what}")
    if not add and not present:
        raise NotFound(f"{target}: Specified account '{party.ncaId}' is not an authorized party for the {what}")
    wanted = [*current, party] if add else [p for p in current if p.ncaId != party.ncaId]
    await authorizations.replace(function_id, version_id, _rows(wanted))
    await call.runtime.routes.refresh(function_id)
    return _dto(versions, version_id, _parties(await authorizations.list(function_id, version_id)))


async def _delete(call: Call, version_id: str) -> AuthorizedPartiesResponse:
    function_id = call.path["functionId"]
    versions = await _owned(call, version_id)
    _not_public(versions, version_id, "delete")
    await call.runtime.catalog.authorizations.replace(function_id, version_id, [])
    await call.runtime.routes.refresh(function_id)
    return _dto(versions, version_id, None)


async def share_function(call: Call) -> AuthorizedPartiesResponse:
    return await _replace(call, FUNCTION_LEVEL)


async def share_function_version(call: Call) -> AuthorizedPartiesResponse:
    return await _replace(call, call.path["functionVersionId"])


async def add_function_party(call: Call) -> AuthorizedPartiesResponse:
    return await _patch(call, FUNCTION_LEVEL, add=True)


async def add_function_version_party(call: Call) -> AuthorizedPartiesResponse:
    return await _patch(call, call.path["functionVersionId"], add=True)


async def remove_function_party(call: Call) -> AuthorizedPartiesResponse:
    return await _patch(call, FUNCTION_LEVEL, add=False)


async def remove_function_version_party(call: Call) -> AuthorizedPartiesResponse:
    return await _patch(call, call.path["functionVersionId"], add=False)


async def unshare_function(call: Call) -> AuthorizedPartiesResponse:
    return await _delete(call, FUNCTION_LEVEL)


async def unshare_function_version(call: Call) -> AuthorizedPartiesResponse:
    return await _delete(call, call.path["functionVersionId"])


async def list_shared_functions(call: Call) -> ListAuthorizedPartiesResponse:
    """Every version of the caller's functions that has at least one party (inherited or its own)."""
    functions = call.runtime.catalog.functions
    authorizations = call.runtime.catalog.authorizations
    owned = await functions.visible(call.nca_id, private=True, authorized=False, public=False)
    shares: dict[str, list[Authorization]] = {}
    dtos = []
    for version in owned:
        if not key_may_use(call.caller, call.runtime, version.function_id, version.version_id):
            continue  # a resource-limited key lists only the functions it is allowed on
        if version.function_id not in shares:
            shares[version.function_id] = await authorizations.list(version.function_id)
        dto = _merged(version, shares[version.function_id])
        if dto.authorizedParties:
            dtos.append(dto)
    return ListAuthorizedPartiesResponse(functions=dtos)


async def get_function_parties(call: Call) -> ListAuthorizedPartiesResponse:
    versions = await _owned(call)
    shares = await call.runtime.catalog.authorizations.list(versions[0].function_id)
    return ListAuthorizedPartiesResponse(functions=[_merged(v, shares) for v in versions])


async def get_function_version_parties(call: Call) -> AuthorizedPartiesResponse:
    version_id = call.path["functionVersionId"]
    versions = await _owned(call, version_id)
    version = next(v for v in versions if v.version_id == version_id)
    shares = await call.runtime.catalog.authorizations.list(version.function_id)
    return AuthorizedPartiesResponse(function=_merged(version, shares))


FUNCTION = "/v2/nvcf/authorizations/functions/{functionId}"
VERSION = FUNCTION + "/versions/{functionVersionId}"
TAG = "authorizations"

ENDPOINTS = [
    Endpoint(
        "GET", "/v2/nvcf/authorizations/functions", list_shared_functions,
        "List the caller's function versions shared with other accounts", SCOPES,
        response=ListAuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "POST", FUNCTION, share_function, "Authorize accounts to invoke every version of a function (replaces)",
        SCOPES, body=AuthorizedPartiesRequest, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "GET", FUNCTION, get_function_parties, "List a function's versions with their authorized accounts",
        SCOPES, response=ListAuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "DELETE", FUNCTION, unshare_function, "Delete every function-level authorization of a function",
        SCOPES, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "PATCH", FUNCTION + "/add", add_function_party, "Authorize one more account for every version",
        SCOPES, body=PatchAuthorizedPartyRequest, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "PATCH", FUNCTION + "/remove", remove_function_party, "Remove an account authorized for every version",
        SCOPES, body=PatchAuthorizedPartyRequest, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "POST", VERSION, share_function_version, "Authorize accounts to invoke a function version (replaces)",
        SCOPES, body=AuthorizedPartiesRequest, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "GET", VERSION, get_function_version_parties,
        "Get the accounts authorized for a function version (inherited and its own)", SCOPES,
        response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "DELETE", VERSION, unshare_function_version, "Delete a function version's own authorizations",
        SCOPES, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "PATCH", VERSION + "/add", add_function_version_party, "Authorize one more account for a function version",
        SCOPES, body=PatchAuthorizedPartyRequest, response=AuthorizedPartiesResponse, tag=TAG,
    ),
    Endpoint(
        "PATCH", VERSION + "/remove", remove_function_version_party,
        "Remove an account authorized for a function version", SCOPES, body=PatchAuthorizedPartyRequest,
        response=AuthorizedPartiesResponse, tag=TAG,
    ),
]  # fmt: skip
