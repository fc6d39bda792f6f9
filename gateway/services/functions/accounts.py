"""``/v2/nvcf/accounts…`` and ``/v2/nvcf/clients/{clientId}``: accounts and the clients mapped to them.

Follows NVCF's ``AccountController``/``AccountService`` and nvcf-cli's account client:

- ``POST``/``DELETE /v2/nvcf/accounts/{ncaId}`` need the JWT authority ``account_setup``; the
  other calls accept it as a JWT scope or an API-key scope (reads also ``list_accounts``). A JWT
  works across accounts (its ``sub`` need not map to one); an API key only for its own account
  (another ``ncaId`` in the path is 403, the list shows only that account).
- Responses: create/update/associate/disassociate ``{"account": AccountDto}``; list
  ``{"cloudAccounts": [AccountDto]}`` (what nvcf-cli decodes); get ``{"account": AccountDetailsDto}``;
  client ``{"client": {clientId, ncaId, name}}``; delete 204.
- Conflicts are 409 (the bootstrap script treats 409 as "already provisioned"): an existing
  account, or a client id already mapped to an account (a client maps to one account only).
- Deleting an account that owns functions or is shared functions is 400 (NVCF's rule); deleting
  the gateway's default account is 400 as well (cfgate: its admin tokens would map nowhere).
  Deletion also removes the account's telemetries, registry credentials and assets.

cfgate's choices where NVCF is silent: ``ncaId`` must match ``^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$``
(NVCF only requires an alphanumeric first character); limits not given default to
``DEFAULT_LIMITS``; registry credentials given at provisioning are kept (secret values sealed)
in the account and shown back without values; ``telemetries`` is not part of the details.
Every change of the client → account mapping evicts the cached principals of those clients.

A client is a subject of one issuer (cfgate, for trusted issuers): ``adminClientIssuer`` in the
create and associate bodies names the trusted issuer (``--trusted-issuer``) whose tokens carry
the client id as ``sub``; omitted, or the gateway's own issuer, it is the gateway's own. Any
other issuer is a 400. Tokens of another issuer with the same ``sub`` map to no account.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cext.hotpath import KIND_JWT
from gateway.api import Call, Endpoint
from gateway.problems import BadRequest, Conflict, Forbidden, NotFound
from gateway.services.functions.account_models import (
    AccountDetailsDto,
    AccountDetailsResponse,
    AccountDto,
    AccountRegistryCredentialDto,
    AccountResponse,
    AccountUpdateRequest,
    ClientDto,
    ClientResponse,
    CreateAccountRequest,
    ListAccountsResponse,
    PatchAccountRequest,
    RegistrySecretName,
)
from gateway.store.accounts import (
    Account,
    AccountExists,
    AccountInUse,
    AccountNotFound,
    ClientNotAssociated,
    ClientTaken,
)
from gateway.store.clock import rfc3339

if TYPE_CHECKING:
    from gateway.runtime import Runtime

NCA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SETUP = ("account_setup",)
READ = ("account_setup", "list_accounts")
LIMITS = ("maxFunctionsAllowed", "maxTasksAllowed", "maxTelemetriesAllowed", "maxRegistryCredentialsAllowed")
DEFAULT_LIMITS: dict[str, int] = {
    "maxFunctionsAllowed": 1000,
    "maxTasksAllowed": 1000,
    "maxTelemetriesAllowed": 25,
    "maxRegistryCredentialsAllowed": 25,
}
REGISTRY_CREDENTIALS = "registryCredentials"


def limit(account: Account, name: str) -> int:
    value = account.limits.get(name)
    return value if isinstance(value, int) else DEFAULT_LIMITS[name]


def account_dto(account: Account) -> AccountDto:
    return AccountDto(
        ncaId=account.nca_id,
        adminClientIds=account.client_ids,
        name=account.name,
        maxFunctionsAllowed=limit(account, "maxFunctionsAllowed"),
        maxTasksAllowed=limit(account, "maxTasksAllowed"),
        maxTelemetriesAllowed=limit(account, "maxTelemetriesAllowed"),
        maxRegistryCredentialsAllowed=limit(account, "maxRegistryCredentialsAllowed"),
        lastUpdatedAt=rfc3339(account.updated_at),
    )


def _registry_dtos(account: Account) -> list[AccountRegistryCredentialDto] | None:
    stored = account.limits.get(REGISTRY_CREDENTIALS)
    if not isinstance(stored, list) or not stored:
        return None
    return [
        AccountRegistryCredentialDto(
            registryHostname=c["registryHostname"],
            artifactTypes=c["artifactTypes"],
            secret=RegistrySecretName(name=c["secret"]["name"]),
            tags=c.get("tags"),
            description=c.get("description"),
        )
        for c in stored
        if isinstance(c, dict)
    ]


async def check_function_quota(runtime: Runtime, nca_id: str) -> None:
    """400 if the account may not register another function (``maxFunctionsAllowed``).

    For the function-creation handler (new functions, not new versions).
    """
    account = await runtime.accounts.get(nca_id)
    if account is None:
        return
    allowed = limit(account, "maxFunctionsAllowed")
    if await runtime.accounts.count_functions(nca_id) >= allowed:
        raise BadRequest(
            f"Account '{nca_id}': Reached or exceeded the max limit for the number of functions allowed: {allowed}."
        )


def _path_account(call: Call) -> str:
    """The path's ``ncaId`` (400 if malformed); an API key may only name its own account (403)."""
    nca_id = call.path["ncaId"]
    if not NCA_ID.match(nca_id):
        raise BadRequest(f"Invalid ncaId '{nca_id[:64]}': must match {NCA_ID.pattern}")
    caller = call.caller
    if caller.kind != KIND_JWT and caller.nca_id != nca_id:
        raise Forbidden(
            f"Invalid request: nca_id '{caller.nca_id}' in bearer token does not match the one in path '{nca_id}'"
        )
    return nca_id


def _client_issuer(call: Call, issuer: str | None) -> str | None:
    """The stored issuer of a client: ``None`` for the gateway's own, else a trusted issuer (400 otherwise)."""
    settings = call.runtime.settings
    if issuer is None or issuer == settings.issuer:
        return None
    if issuer not in settings.trusted_issuer_map():
        raise BadRequest(f"Invalid adminClientIssuer '{issuer[:128]}': not this gateway's issuer or a trusted issuer")
    return issuer


async def _evict(call: Call, *client_ids: str | None) -> None:
    for client_id in client_ids:
        if client_id:
            await call.runtime.authenticator.revoke_subject(client_id)


def _sealed_registry_credentials(call: Call, nca_id: str, body: CreateAccountRequest) -> list[dict[str, Any]]:
    sealed = []
    for index, credential in enumerate(body.registryCredentials or []):
        entry = credential.model_dump(mode="json", exclude_none=True, exclude={"secret"})
        context = f"account-registry:{nca_id}:{index}:{credential.secret.name}"
        entry["secret"] = {
            "name": credential.secret.name,
            "ciphertext": call.runtime.secretbox.seal(credential.secret.value, context),
        }
        sealed.append(entry)
    return sealed


async def list_accounts(call: Call) -> ListAccountsResponse:
    accounts = await call.runtime.accounts.list_all()
    if call.caller.kind != KIND_JWT:
        accounts = [a for a in accounts if a.nca_id == call.caller.nca_id]
    return ListAccountsResponse(cloudAccounts=[account_dto(a) for a in accounts])


async def create_account(call: Call) -> AccountResponse:
    nca_id = _path_account(call)
    body: CreateAccountRequest = call.body
    issuer = _client_issuer(call, body.adminClientIssuer)
    limits: dict[str, Any] = {name: getattr(body, name) for name in LIMITS if getattr(body, name) is not None}
    if body.registryCredentials:
        limits[REGISTRY_CREDENTIALS] = _sealed_registry_credentials(call, nca_id, body)
    try:
        account = await call.runtime.accounts.create(nca_id, body.name, body.adminClientId, limits, issuer)
    except (ClientTaken, AccountExists) as exc:
        raise Conflict(str(exc)) from None
    await _evict(call, body.adminClientId)
    return AccountResponse(account=account_dto(account))


async def get_account(call: Call) -> AccountDetailsResponse:
    nca_id = _path_account(call)
    account = await call.runtime.accounts.get(nca_id)
    if account is None:
        raise NotFound(f"Account with ncaId '{nca_id}' not found")
    details = AccountDetailsDto(
        ncaId=account.nca_id,
        clientIds=account.client_ids,
        name=account.name,
        registryCredentials=_registry_dtos(account),
        maxFunctionsAllowed=limit(account, "maxFunctionsAllowed"),
        maxTasksAllowed=limit(account, "maxTasksAllowed"),
        maxTelemetriesAllowed=limit(account, "maxTelemetriesAllowed"),
        maxRegistryCredentialsAllowed=limit(account, "maxRegistryCredentialsAllowed"),
        currentNumberFunctions=await call.runtime.accounts.count_functions(nca_id),
        lastUpdatedAt=rfc3339(account.updated_at),
    )
    return AccountDetailsResponse(account=details)


async def update_account(call: Call) -> AccountResponse:
    nca_id = _path_account(call)
    body: AccountUpdateRequest = call.body
    patch = {name: getattr(body, name) for name in LIMITS if getattr(body, name) is not None}
    try:
        account = await call.runtime.accounts.update(nca_id, body.name, patch)
    except AccountNotFound as exc:
        raise NotFound(str(exc)) from None
    return AccountResponse(account=account_dto(account))


async def associate_client(call: Call) -> AccountResponse:
    nca_id = _path_account(call)
    client_id = call.body.adminClientId
    issuer = _client_issuer(call, call.body.adminClientIssuer)
    try:
        account = await call.runtime.accounts.associate(nca_id, client_id, issuer)
    except ClientTaken as exc:
        raise Conflict(str(exc)) from None
    except AccountNotFound as exc:
        raise NotFound(str(exc)) from None
    await _evict(call, client_id)
    return AccountResponse(account=account_dto(account))


async def disassociate_client(call: Call) -> AccountResponse:
    nca_id = _path_account(call)
    client_id = call.body.adminClientId
    try:
        account = await call.runtime.accounts.disassociate(nca_id, client_id)
    except AccountNotFound as exc:
        raise NotFound(str(exc)) from None
    except ClientNotAssociated as exc:
        raise BadRequest(str(exc)) from None
    await _evict(call, client_id)
    return AccountResponse(account=account_dto(account))


async def delete_account(call: Call) -> None:
    nca_id = _path_account(call)
    if nca_id == call.runtime.default_account.nca_id:
        raise BadRequest(f"Account '{nca_id}' is the gateway's default account and cannot be deleted")
    try:
        deleted = await call.runtime.accounts.delete(nca_id)
    except AccountNotFound as exc:
        raise NotFound(str(exc)) from None
    except AccountInUse as exc:
        raise BadRequest(str(exc)) from None
    await _evict(call, *deleted.account.client_ids)
    await call.runtime.assets.drop_account(nca_id)


async def get_client(call: Call) -> ClientResponse:
    client_id = call.path["clientId"]
    # No client id holds a NUL character (PostgreSQL text cannot store one): unknown, not a query.
    account = None if "\x00" in client_id else await call.runtime.accounts.by_admin_client(client_id)
    # An API key sees only its own account's clients; others look unknown.
    if account is None or (call.caller.kind != KIND_JWT and account.nca_id != call.caller.nca_id):
        raise NotFound(f"Client '{client_id[:128]}' not found")
    return ClientResponse(client=ClientDto(clientId=client_id, ncaId=account.nca_id, name=account.name))


ACCOUNT = "/v2/nvcf/accounts/{ncaId}"

ENDPOINTS = [
    Endpoint(
        "GET", "/v2/nvcf/accounts", list_accounts, "List accounts", READ,
        response=ListAccountsResponse, tag="accounts",
    ),
    Endpoint(
        "POST", ACCOUNT, create_account, "Provision an account", SETUP, jwt_only=True,
        body=CreateAccountRequest, response=AccountResponse, tag="accounts",
    ),
    Endpoint(
        "GET", ACCOUNT, get_account, "Get an account's details", READ,
        response=AccountDetailsResponse, tag="accounts",
    ),
    Endpoint(
        "PATCH", ACCOUNT, update_account, "Update an account's name or limits", SETUP,
        body=AccountUpdateRequest, response=AccountResponse, tag="accounts",
    ),
    Endpoint(
        "DELETE", ACCOUNT, delete_account, "Delete an account and its clients", SETUP, jwt_only=True,
        status=204, tag="accounts",
    ),
    Endpoint(
        "PATCH", ACCOUNT + "/clients/associate", associate_client, "Associate a client id with an account",
        SETUP, body=PatchAccountRequest, response=AccountResponse, tag="accounts",
    ),
    Endpoint(
        "PATCH", ACCOUNT + "/clients/disassociate", disassociate_client, "Disassociate a client id from an account",
        SETUP, body=PatchAccountRequest, response=AccountResponse, tag="accounts",
    ),
    Endpoint(
        "GET", "/v2/nvcf/clients/{clientId}", get_client, "Get the account a client id maps to", SETUP,
        response=ClientResponse, tag="accounts",
    ),
]  # fmt: skip
