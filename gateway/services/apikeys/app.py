"""Routes of the API Keys service and the admin token issuer.

Access: creating, listing, reading and deleting keys needs an admin JWT (one with at least one
admin scope) whose subject maps to an account. Calls without a bearer (older docs' ``curl`` form,
and nvcf-cli's bare ``DELETE``) are accepted only through the bootstrap door, and then act for
the default account. Introspection and evaluation are open, as in NVCF: they only answer a caller
who already holds the key.

Keys never exceed their creator: every scope of a new key (or of new authorizations) must be
delegable by the caller (``gateway.auth.authority.delegable``: its own scopes plus the consumer
scopes its admin scopes imply; everything at the bootstrap door); otherwise 403, nothing stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cext.hotpath import Principal
from gateway.access import bootstrap_door_open, optional_principal, require_jwt
from gateway.auth import apikey_format
from gateway.auth.authenticator import ACTIVE
from gateway.auth.authority import CredentialKind, kind_of, scopes_of, undelegable
from gateway.auth.principals import policies_of
from gateway.auth.scopes import ADMIN_DEFAULT_SCOPES, ALL_SCOPES
from gateway.http import JSONResponse, read_json_object
from gateway.problems import BadRequest, Forbidden, NotFound, Unauthorized
from gateway.runtime import Runtime
from gateway.services.apikeys.dto import key_dto
from gateway.services.apikeys.issuers import ISSUERS, NAMESPACE_PRODUCTS, IssuerService
from gateway.services.apikeys.validation import parse_authorizations, parse_create, parse_key_id
from gateway.services.common import build_service_app
from gateway.store.apikeys import ApiKeyRecord
from gateway.store.clock import now_ms, rfc3339

EVALUATION_POLICIES = {"apikey.allow"}
MAX_OWNER_ID = 256


@dataclass(frozen=True, slots=True)
class Creator:
    """Who calls a key-management endpoint: the account it acts for, its table row, its scopes."""

    nca_id: str
    kind: CredentialKind
    scopes: frozenset[str]


class ApiKeysService:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.limit = runtime.settings.max_control_body_bytes
        self.keys = runtime.api_keys

    async def caller_account(self, request: Request) -> str:
        return (await self.caller(request)).nca_id

    async def caller(self, request: Request) -> Creator:
        principal = await optional_principal(request, self.runtime)
        if principal is None:
            if bootstrap_door_open(request, self.runtime):
                return Creator(self.runtime.default_account.nca_id, CredentialKind.DOOR, frozenset())
            raise Unauthorized("Header of type `authorization` was missing")
        _require_admin(principal)
        if not principal.nca_id:
            raise NotFound("Unknown client_id")
        return Creator(principal.nca_id, kind_of(principal), scopes_of(principal))

    async def visible_key(self, request: Request, nca_id: str) -> ApiKeyRecord:
        key_id = parse_key_id(request.path_params["key_id"])
        record = await self.keys.get(key_id)
        issuer_id = request.headers.get("key-issuer-id")
        if record is None or record.nca_id != nca_id or (issuer_id and issuer_id != record.issuer_service_id):
            raise NotFound("Key not found.")
        return record

    async def mint_admin_token(self, request: Request) -> Response:
        if not bootstrap_door_open(request, self.runtime):
            raise Forbidden("Admin tokens are issued only to loopback clients or with the bootstrap secret")
        body = await read_json_object(request, self.limit, allow_empty=True)
        minted = self.runtime.issuer.mint(self.settings.admin_client_id, _requested_scopes(body))
        claims = minted.claims
        return JSONResponse(
            {
                "id": claims["jti"],
                "value": minted.value,
                "status": ACTIVE,
                "owner_type": "SYSTEM",
                "owner_id": claims["sub"],
                "issuer_service_id": claims["iss"],
                "audience_service_ids": claims["aud"],
                "description": "NVCF admin token",
                "scopes": claims["scopes"],
                "created_at": rfc3339(claims["iat"] * 1000),
                "expires_at": rfc3339(claims["exp"] * 1000),
            }
        )

    async def create_key(self, request: Request) -> Response:
        creator = await self.caller(request)
        nca_id = creator.nca_id
        issuer, owner_id = _issuer_and_owner(request)
        body = await read_json_object(request, self.limit)
        now = now_ms()
        spec = parse_create(body, now, self.settings.max_api_key_lifetime_days * 86_400_000)
        _require_product(spec.authorizations, issuer)
        _require_delegable(creator, spec.authorizations)
        value = apikey_format.generate()
        record = ApiKeyRecord(
            id=str(uuid.uuid4()),
            key_hash=apikey_format.key_hash(value),
            nca_id=nca_id,
            owner_id=owner_id,
            owner_type="USER",
            issuer_service_id=issuer.id,
            audience_service_ids=spec.audience_service_ids or [issuer.id],
            description=spec.description,
            status=ACTIVE,
            authorizations=spec.authorizations,
            created_at=now,
            expires_at=spec.expires_at_ms,
        )
        await self.keys.insert(record)
        return JSONResponse(key_dto(record, value=value))

    async def list_keys(self, request: Request) -> Response:
        nca_id = await self.caller_account(request)
        issuer, owner_id = _issuer_and_owner(request)
        records = await self.keys.list_for_owner(issuer.id, owner_id)
        return JSONResponse({"keys": [key_dto(r, authorizations=False) for r in records if r.nca_id == nca_id]})

    async def get_key(self, request: Request) -> Response:
        record = await self.visible_key(request, await self.caller_account(request))
        return JSONResponse(key_dto(record))

    async def delete_key(self, request: Request) -> Response:
        record = await self.visible_key(request, await self.caller_account(request))
        await self.keys.delete(record.id)
        await self.runtime.authenticator.revoke_key(record.id)
        return Response(status_code=204)

    async def put_authorizations(self, request: Request) -> Response:
        creator = await self.caller(request)
        record = await self.visible_key(request, creator.nca_id)
        authorizations = parse_authorizations(await read_json_object(request, self.limit))
        _require_product(authorizations, ISSUERS[record.issuer_service_id])
        _require_delegable(creator, authorizations)
        updated = await self.keys.set_authorizations(record.id, authorizations)
        await self.runtime.authenticator.revoke_key(record.id)
        if updated is None:
            raise NotFound("Key not found.")
        return JSONResponse(key_dto(updated))

    async def introspect(self, request: Request) -> Response:
        body = await read_json_object(request, self.limit)
        key = body.get("key", body.get("api_key"))
        audience = body.get("audience_service_id")
        if not isinstance(key, str) or not key:
            raise BadRequest("Validation failed: [field=key, rejected=null, message=must not be blank]")
        record = await self._live_key(key)
        if record is None or (isinstance(audience, str) and audience not in _audiences(record)):
            raise NotFound("Key not found.")
        return JSONResponse(key_dto(record))

    async def evaluate(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        policy_name = request.path_params["policy"]
        product = NAMESPACE_PRODUCTS.get(namespace)
        if product is None or policy_name not in EVALUATION_POLICIES:
            raise NotFound(f"Unknown policy '{policy_name}' in namespace '{namespace}'")
        body = await read_json_object(request, self.limit)
        data = body.get("input")
        key = data.get("apiKey") if isinstance(data, dict) else None
        if not isinstance(key, str):
            raise BadRequest("Validation failed: [field=input.apiKey, rejected=null, message=must not be null]")
        record = await self._live_key(key)
        policy = _policy_for(record, product) if record else None
        result: dict[str, Any] = {"allowed": False, "ncaId": None, "ownerId": None, "policy": None}
        if record is not None and policy is not None:
            result = {"allowed": True, "ncaId": record.nca_id, "ownerId": record.owner_id, "policy": policy}
        return JSONResponse({"namespace": namespace, "rule_name": policy_name, "result": result})

    async def list_services(self, request: Request) -> Response:
        return JSONResponse({"services": [s.dto() for s in ISSUERS.values()]})

    async def get_service(self, request: Request) -> Response:
        service = ISSUERS.get(request.path_params["service_id"])
        if service is None:
            raise NotFound("Service not found.")
        return JSONResponse({"service": service.dto()})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.runtime.keyring.jwks())

    async def openid_configuration(self, request: Request) -> Response:
        base = self.settings.public_urls.service("api-keys")  # never the request's Host
        return JSONResponse(
            {
                "issuer": self.settings.issuer,
                "jwks_uri": f"{base}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["ES256"],
            }
        )

    async def _live_key(self, key: str) -> ApiKeyRecord | None:
        if not apikey_format.well_formed(key):
            return None
        record = await self.keys.by_hash(apikey_format.key_hash(key))
        if record is None or record.status != ACTIVE or record.expires_at <= now_ms():
            return None
        return record

    def app(self) -> Starlette:
        return build_service_app(
            [
                Route("/v1/admin/keys", self.mint_admin_token, methods=["POST"]),
                Route("/v1/keys", self.create_key, methods=["POST"]),
                Route("/v1/keys", self.list_keys, methods=["GET"]),
                Route("/v1/keys/{key_id}", self.get_key, methods=["GET"]),
                Route("/v1/keys/{key_id}", self.delete_key, methods=["DELETE"]),
                Route("/v1/keys/{key_id}/authorizations", self.put_authorizations, methods=["PUT"]),
                Route("/v1/introspect", self.introspect, methods=["POST"]),
                Route("/v1/namespaces/{namespace}/evaluations/{policy}", self.evaluate, methods=["POST"]),
                Route("/v1/services", self.list_services, methods=["GET"]),
                Route("/v1/services/{service_id}", self.get_service, methods=["GET"]),
                Route("/v1/jwks", self.jwks, methods=["GET"]),
                Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
                Route("/.well-known/openid-configuration", self.openid_configuration, methods=["GET"]),
            ]
        )


def build_apikeys_app(runtime: Runtime) -> Starlette:
    return ApiKeysService(runtime).app()


def _requested_scopes(body: dict[str, Any]) -> tuple[str, ...]:
    """The default admin scopes, or the ``scopes`` an operator asks for (e.g. ``authorize_clients``)."""
    scopes = body.get("scopes")
    if scopes is None:
        return ADMIN_DEFAULT_SCOPES
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise BadRequest("Validation failed: [field=scopes, message=must be a non-empty list of scope names]")
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise BadRequest(f"Validation failed: [field=scopes, rejected={unknown[0][:64]}, message=unknown scope]")
    return tuple(dict.fromkeys(scopes))


def _require_admin(principal: Principal) -> None:
    require_jwt(principal)
    if not principal.authorities.intersection(ADMIN_DEFAULT_SCOPES):
        raise Forbidden("Managing API keys requires an admin token")


def _issuer_and_owner(request: Request) -> tuple[IssuerService, str]:
    owner_id = request.headers.get("key-owner-id", "").strip()
    if not owner_id:
        raise BadRequest("Key-Owner-Id is not set")
    if len(owner_id) > MAX_OWNER_ID:
        raise BadRequest(f"Key-Owner-Id is longer than {MAX_OWNER_ID} characters")
    issuer_id = request.headers.get("key-issuer-id", "").strip()
    if not issuer_id:
        raise BadRequest("Key-Issuer-Id is not set")
    issuer = ISSUERS.get(issuer_id)
    if issuer is None:
        raise BadRequest(f"Key-Issuer-Id '{issuer_id[:128]}' is not a registered service")
    return issuer, owner_id


def _require_product(authorizations: dict[str, Any], issuer: IssuerService) -> None:
    for policy in policies_of(authorizations):
        if policy["product"] != issuer.product:
            raise BadRequest(
                f"Validation failed: [field=authorizations.policies.product, rejected={policy['product']}, "
                f"message=issuer {issuer.id} issues keys for product {issuer.product}]"
            )


def _require_delegable(creator: Creator, authorizations: dict[str, Any]) -> None:
    """403 unless the creator may delegate every scope of every policy (a key never exceeds it)."""
    requested = [s for policy in policies_of(authorizations) for s in policy.get("scopes", [])]
    refused = undelegable(creator.kind, creator.scopes, requested)
    if refused:
        names = ", ".join(f"'{s}'" for s in refused)
        raise Forbidden(f"Cannot delegate scope(s) {names}: a key may not hold scopes its creator cannot delegate")


def _audiences(record: ApiKeyRecord) -> set[str]:
    return {record.issuer_service_id, *record.audience_service_ids}


def _policy_for(record: ApiKeyRecord, product: str) -> dict[str, Any] | None:
    for policy in policies_of(record.authorizations):
        if policy.get("product") == product:
            return policy
    return None
