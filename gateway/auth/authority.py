"""The one authority model: which credential may do what on which surface, and what it may delegate.

Everything the gateway decides about *who* a caller is reads this module; the authorization
matrix tests (``tests/control``) derive their expected statuses from the same tables, and the
README's "Security model" section is this module in prose.

Credential kinds (``CredentialKind``):

* ``OPERATOR`` — a JWT of the gateway's own issuer (``settings.issuer``) whose subject is the
  bootstrap admin client (``settings.admin_client_id``): what ``POST /v1/admin/keys`` mints. It
  is the default account's admin and the only JWT the local issuer hands out.
* ``DOOR`` — no bearer, but through the bootstrap door (loopback unless
  ``--no-bootstrap-loopback``, or the bootstrap secret). It is the operator at the door: it can
  mint an operator token with any scope anyway, so it may delegate every scope.
* ``ACCOUNT_ADMIN`` — any other JWT (a trusted issuer's, or the local issuer's for another
  client) whose ``(issuer, subject)`` maps to an account. Its scopes are its own; it reaches
  other accounts only with ``account_setup`` on the account-administration endpoints.
* ``FUNCTION_KEY`` / ``TASK_KEY`` — ``nvapi-`` keys whose policies name the functions / tasks
  product; their resources bind them further (``may_use_function``).
* ``CLUSTER`` — an SIS ``nvcc-`` credential: only the gRPC worker endpoint (placement rules in
  ``gateway.auth.worker_authority``).
* ``NONE`` — no bearer and not at the door: 401 everywhere a credential is needed.

``OPERATOR_SCOPES`` are the scopes that act across accounts. No scope — operator scope or not —
is delegable by a principal that does not hold it, except the consumer scopes ``IMPLIED`` by an
admin scope (the default admin token mints the documented function and task keys that way).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Protocol

from cext.hotpath import KIND_API_KEY, KIND_JWT, Principal
from gateway.auth.scopes import (
    ALL_SCOPES,
    APIKEY_PREFIX,
    FUNCTIONS_PRODUCT,
    TASK_KEY_DEFAULT_SCOPES,
    TASKS_PRODUCT,
)

# Not a claim: added to the principal of the operator's JWT by ``gateway.auth.principals`` (a
# scope of that name in a token's claims is dropped, so no issuer can grant it).
OPERATOR_AUTHORITY = "cfgate:operator"

# Scopes that act across accounts (NVCF's account super-admin): never delegable without them.
OPERATOR_SCOPES: frozenset[str] = frozenset({"account_setup"})


class CredentialKind(StrEnum):
    OPERATOR = "operator"
    DOOR = "bootstrap-door"
    ACCOUNT_ADMIN = "account-admin"
    FUNCTION_KEY = "function-key"
    TASK_KEY = "task-key"
    CLUSTER = "cluster"
    NONE = "none"


class Surface(StrEnum):
    """A host, or a group of endpoints on one, that the table gives its own column."""

    CONTROL_PLANE = "api"  # api.<domain>/v2/nvcf… except account administration
    ACCOUNTS = "accounts"  # api.<domain>/v2/nvcf/accounts…, /v2/nvcf/clients/{clientId}
    KEYS = "api-keys"  # api-keys.<domain>/v1/keys… (create, list, read, delete, authorizations)
    ADMIN_TOKENS = "admin-tokens"  # api-keys.<domain>/v1/admin/keys
    INVOCATION = "invocation"  # invocation.<domain> and pexec on api.<domain>
    LLM = "llm"  # llm.invocation.<domain>, llm.<domain>: OpenAI-compatible, an invocation by model
    GRPC_INVOCATION = "grpc-invocation"  # the gRPC invocation port (--grpc-port, NVCF's 10081)
    TASKS = "tasks"  # tasks.<domain>/v1/nvct…
    SIS = "sis"  # sis.<domain>
    WORKER = "worker"  # gRPC Register and the task-worker stream


class Reach(Enum):
    """How far a credential reaches on a surface (always also bounded by the endpoint's scopes)."""

    NOTHING = "nothing"  # refused: 401 without a credential, else 403
    OWN = "own"  # its own account only; other accounts' resources are 404
    CONSENTED = "consented"  # its own account and accounts that consented (worker endpoint)
    ANY = "any"  # every account (account administration with an operator scope; operator workers)


class Delegation(Enum):
    """What a credential may put into an API key it creates (``delegable``)."""

    NONE = "none"  # it may not create keys
    HELD = "held"  # its own scopes plus those they imply (``IMPLIED``)
    ALL = "all"  # every scope (the operator at the bootstrap door)


@dataclass(frozen=True, slots=True)
class Rule:
    reach: Reach
    # True: the credential satisfies JWT-only endpoints (``hasAnyAuthority(s)`` without ``apikey:s``).
    jwt_only_ok: bool = False
    delegates: Delegation = Delegation.NONE


_NO = Rule(Reach.NOTHING)
_JWT_OWN = Rule(Reach.OWN, jwt_only_ok=True)

# THE table: credential kind × surface → rule. Endpoint scopes come on top of it (``allows``).
AUTHORITY: Mapping[CredentialKind, Mapping[Surface, Rule]] = {
    CredentialKind.OPERATOR: {
        Surface.CONTROL_PLANE: _JWT_OWN,
        Surface.ACCOUNTS: Rule(Reach.ANY, jwt_only_ok=True),
        Surface.KEYS: Rule(Reach.OWN, jwt_only_ok=True, delegates=Delegation.HELD),
        Surface.ADMIN_TOKENS: _NO,  # minted only at the door, whatever bearer is sent
        Surface.INVOCATION: _JWT_OWN,
        Surface.LLM: _JWT_OWN,
        Surface.GRPC_INVOCATION: _JWT_OWN,
        Surface.TASKS: _JWT_OWN,
        Surface.SIS: _JWT_OWN,
        Surface.WORKER: Rule(Reach.ANY, jwt_only_ok=True),
    },
    CredentialKind.DOOR: {
        Surface.CONTROL_PLANE: _NO,
        Surface.ACCOUNTS: _NO,
        Surface.KEYS: Rule(Reach.OWN, jwt_only_ok=True, delegates=Delegation.ALL),  # the default account
        Surface.ADMIN_TOKENS: Rule(Reach.OWN, jwt_only_ok=True),
        Surface.INVOCATION: _NO,
        Surface.LLM: _NO,
        Surface.GRPC_INVOCATION: _NO,
        Surface.TASKS: _NO,
        Surface.SIS: _NO,
        Surface.WORKER: _NO,
    },
    CredentialKind.ACCOUNT_ADMIN: {
        Surface.CONTROL_PLANE: _JWT_OWN,
        Surface.ACCOUNTS: Rule(Reach.ANY, jwt_only_ok=True),  # with account_setup, an operator scope
        Surface.KEYS: Rule(Reach.OWN, jwt_only_ok=True, delegates=Delegation.HELD),
        Surface.ADMIN_TOKENS: _NO,
        Surface.INVOCATION: _JWT_OWN,
        Surface.LLM: _JWT_OWN,
        Surface.GRPC_INVOCATION: _JWT_OWN,
        Surface.TASKS: _JWT_OWN,
        Surface.SIS: _JWT_OWN,
        Surface.WORKER: _JWT_OWN,
    },
    CredentialKind.FUNCTION_KEY: {
        Surface.CONTROL_PLANE: Rule(Reach.OWN),
        Surface.ACCOUNTS: Rule(Reach.OWN),
        Surface.KEYS: _NO,
        Surface.ADMIN_TOKENS: _NO,
        Surface.INVOCATION: Rule(Reach.OWN),
        Surface.LLM: Rule(Reach.OWN),
        Surface.GRPC_INVOCATION: Rule(Reach.OWN),
        Surface.TASKS: _NO,
        Surface.SIS: _NO,
        Surface.WORKER: Rule(Reach.OWN),
    },
    CredentialKind.TASK_KEY: {
        Surface.CONTROL_PLANE: _NO,
        Surface.ACCOUNTS: _NO,
        Surface.KEYS: _NO,
        Surface.ADMIN_TOKENS: _NO,
        Surface.INVOCATION: _NO,
        Surface.LLM: _NO,
        Surface.GRPC_INVOCATION: _NO,
        Surface.TASKS: Rule(Reach.OWN),
        Surface.SIS: _NO,
        Surface.WORKER: _NO,
    },
    CredentialKind.CLUSTER: {
        **{surface: _NO for surface in Surface},
        Surface.WORKER: Rule(Reach.CONSENTED),
    },
    CredentialKind.NONE: {surface: _NO for surface in Surface},
}

# Consumer scopes an admin scope lets its holder put into keys although it does not hold them:
# whoever registers functions may let a key invoke them and read their queues; whoever deploys
# (runs containers on the account's GPUs) may let a key run tasks, which do the same.
IMPLIED: Mapping[str, frozenset[str]] = {
    "register_function": frozenset({"invoke_function", "queue_details"}),
    "deploy_function": frozenset(TASK_KEY_DEFAULT_SCOPES),
}

# The product each API-key kind's policies name.
KEY_PRODUCTS: Mapping[CredentialKind, str] = {
    CredentialKind.FUNCTION_KEY: FUNCTIONS_PRODUCT,
    CredentialKind.TASK_KEY: TASKS_PRODUCT,
}


def rule(kind: CredentialKind, surface: Surface) -> Rule:
    return AUTHORITY[kind][surface]


def allows(kind: CredentialKind, surface: Surface, held: Iterable[str], wanted: Iterable[str], jwt_only: bool) -> bool:
    """Does a credential of ``kind`` holding scopes ``held`` pass an endpoint needing any of ``wanted``?"""
    entry = rule(kind, surface)
    if entry.reach is Reach.NOTHING or (jwt_only and not entry.jwt_only_ok):
        return False
    return not set(held).isdisjoint(wanted)


def delegable(kind: CredentialKind, held: Iterable[str]) -> frozenset[str]:
    """The scopes a credential of ``kind`` holding ``held`` may put into a key it creates."""
    mode = rule(kind, Surface.KEYS).delegates
    if mode is Delegation.ALL:
        return frozenset(ALL_SCOPES)
    if mode is Delegation.NONE:
        return frozenset()
    own = frozenset(s for s in held if s in ALL_SCOPES)
    implied = frozenset().union(*(IMPLIED.get(s, frozenset()) for s in own))
    return own | (implied - OPERATOR_SCOPES)  # an operator scope is only ever passed on by its holder


def undelegable(kind: CredentialKind, held: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The requested key scopes the creator may not delegate (empty: the key may be created)."""
    allowed = delegable(kind, held)
    return [s for s in dict.fromkeys(requested) if s not in allowed]


def kind_of(principal: Principal | None, *, at_door: bool = False, product: str = FUNCTIONS_PRODUCT) -> CredentialKind:
    """The table row of a principal (``None``: no bearer; ``at_door``: through the bootstrap door).

    An API key's row is chosen by the product it is being judged for (its policies per product
    are separate views of the same key: ``gateway.auth.principals``).
    """
    if principal is None:
        return CredentialKind.DOOR if at_door else CredentialKind.NONE
    if principal.kind == KIND_JWT:
        return CredentialKind.OPERATOR if is_operator(principal) else CredentialKind.ACCOUNT_ADMIN
    if principal.kind == KIND_API_KEY:
        return CredentialKind.TASK_KEY if product == TASKS_PRODUCT else CredentialKind.FUNCTION_KEY
    return CredentialKind.CLUSTER


def is_operator(principal: Principal) -> bool:
    """The local issuer's bootstrap admin (see the module docstring); never an API key."""
    return principal.kind == KIND_JWT and OPERATOR_AUTHORITY in principal.authorities


def scopes_of(principal: Principal) -> frozenset[str]:
    """The principal's scope names (API-key authorities without their ``apikey:`` prefix)."""
    names = (a.removeprefix(APIKEY_PREFIX) for a in principal.authorities)
    return frozenset(s for s in names if s in ALL_SCOPES)


class FunctionOwner(Protocol):
    """What ``may_use_function`` needs of a function (``gateway.services.functions.routing.FunctionRoute``)."""

    @property
    def nca_id(self) -> str: ...

    @property
    def public(self) -> bool: ...

    def shared_with_account(self, nca_id: str, version_id: str | None = None) -> bool: ...


def may_see_function(principal: Principal, function: FunctionOwner | None, version_id: str | None = None) -> bool:
    """The account rule: the caller's account owns the function, or it is public or shared with it."""
    caller = principal.nca_id
    if function is None or not caller:
        return False
    return function.nca_id == caller or function.public or function.shared_with_account(caller, version_id)


def may_use_function(principal: Principal, function: FunctionOwner, function_id: str, version_id: str | None) -> bool:
    """The API-key resource rule (NVCF ``allAllowedFunctions``) for a function the account may see.

    JWTs pass (their account rule is ``may_see_function``); an API key needs
    ``account-functions`` for its account's own functions, ``authorized-functions`` for shared
    ones, or a ``function`` resource naming the function (and version, unless ``/*``). Every
    surface that accepts an API key for a function calls this: pexec and status polls,
    control-plane reads and writes, queue details, worker registration.
    """
    shared = function.public or function.shared_with_account(principal.nca_id, version_id)
    version = version_id.lower() if version_id else None
    return bool(principal.allows_function(function_id.lower(), version, function.nca_id, shared))


def principal_may_use_function(
    principal: Principal, function: FunctionOwner | None, function_id: str, version_id: str | None
) -> bool:
    """Both rules at once: the account may see the function and the key's resources allow it."""
    return (
        function is not None
        and may_see_function(principal, function, version_id)
        and may_use_function(principal, function, function_id, version_id)
    )
