"""The authorization matrix's table: credentials, and per endpoint its target, a valid body and checks.

``SPECS`` has one entry per ``"<METHOD> <path>"`` of ``control_plane_endpoints()``; the matrix test
fails for an endpoint without one, so a new endpoint cannot escape the matrix. What each credential
must get is computed from the gateway's authority table (``gateway.auth.authority.AUTHORITY``: the
credential's kind × the endpoint's surface) and the endpoint's declared scopes (``expected``), never
listed by hand — and the declared scopes are checked against the reference's (``contract_scopes``):

* no bearer → 401; a credential without one of the endpoint's scopes → 403 (an API key never
  satisfies a JWT-only endpoint; a task key — product ``nv-cloud-tasks`` — never satisfies any
  control-plane endpoint: NVCF evaluates keys in the ``nvcf`` namespace, which sees the functions
  policy only);
* the owner with the scope → the endpoint's success status;
* another account with the scope → ``Spec.other``: ``NOT_FOUND`` when the endpoint targets one
  resource of the owner, ``OWN`` when it works on the caller's own account (create, list: the
  owner's resources must not show), ``ANY`` for the account-administration endpoints, where a JWT
  with ``account_setup`` manages every account while an API key is locked to its own (NVCF's
  ``assertAccountIdFromPathMatches``: 403; a client of another account is unknown: 404) —
  ``Spec.other_key`` says which;
* a functions API key whose resources name another function (``bound``) → 403 "Missing resource
  entry" on every endpoint targeting the world's function (path ``functionId`` or a deployment of
  it), 404 for the position of a request of that function, and listings without it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.api import Endpoint
from gateway.auth.authority import CredentialKind, Reach, Surface, allows, rule
from gateway.auth.scopes import (
    ADMIN_DEFAULT_SCOPES,
    ALL_SCOPES,
    FUNCTION_KEY_DEFAULT_SCOPES,
    FUNCTIONS_PRODUCT,
    TASK_KEY_DEFAULT_SCOPES,
    TASKS_PRODUCT,
)
from tests.control.conftest import OPERATOR_SCOPES
from tests.control.helpers import deployment_body, function_body

# Every scope a JWT can carry for the control plane (``list_accounts`` is a JWT-only read scope).
ALL_JWT_SCOPES: tuple[str, ...] = (*ALL_SCOPES, "list_accounts")

NOT_FOUND: Literal["not-found"] = "not-found"
OWN: Literal["own"] = "own"
ANY: Literal["any"] = "any"
Other = Literal["not-found", "own", "any"]
Kind = Literal["none", "jwt", "key"]


def surface_of(endpoint: Endpoint) -> Surface:
    """The authority table's column for a control-plane endpoint."""
    area = endpoint.path.removeprefix("/v2/nvcf/").split("/")[0]
    return Surface.ACCOUNTS if area in ("accounts", "clients") else Surface.CONTROL_PLANE


@dataclass(frozen=True)
class Credential:
    name: str
    kind: Kind
    # The scopes it carries, given the endpoint under test (some credentials are built per endpoint).
    scopes: Callable[[Endpoint], tuple[str, ...]] = lambda e: ()
    other_account: bool = False
    product: str = FUNCTIONS_PRODUCT
    # An API key whose only resource is another function of its account.
    bound: bool = False

    @property
    def authority(self) -> CredentialKind:
        """Its row in the authority table (the matrix's JWTs are account admins of fresh accounts)."""
        if self.kind == "none":
            return CredentialKind.NONE
        if self.kind == "jwt":
            return CredentialKind.ACCOUNT_ADMIN
        return CredentialKind.TASK_KEY if self.product == TASKS_PRODUCT else CredentialKind.FUNCTION_KEY

    def grants(self, endpoint: Endpoint) -> bool:
        return allows(self.authority, surface_of(endpoint), self.scopes(endpoint), endpoint.scopes, endpoint.jwt_only)


def key_scopes(endpoint: Endpoint) -> tuple[str, ...]:
    """The endpoint's scopes an API key can hold (``list_accounts`` is not an API-key scope)."""
    return tuple(s for s in endpoint.scopes if s in ALL_SCOPES)


CREDENTIALS: tuple[Credential, ...] = (
    Credential("no bearer", "none"),
    Credential("admin JWT", "jwt", lambda e: ADMIN_DEFAULT_SCOPES),
    Credential("operator JWT", "jwt", lambda e: OPERATOR_SCOPES),
    Credential("function key", "key", lambda e: FUNCTION_KEY_DEFAULT_SCOPES),
    Credential("task key", "key", lambda e: TASK_KEY_DEFAULT_SCOPES, product=TASKS_PRODUCT),
    Credential("JWT without scope", "jwt", lambda e: tuple(s for s in ALL_JWT_SCOPES if s not in e.scopes)),
    Credential("key without scope", "key", lambda e: tuple(s for s in ALL_SCOPES if s not in e.scopes)),
    Credential("key with scope", "key", key_scopes),
    Credential("other account JWT", "jwt", lambda e: ALL_JWT_SCOPES, other_account=True),
    Credential("other account key", "key", lambda e: ALL_SCOPES, other_account=True),
    Credential("key for another function", "key", key_scopes, bound=True),
)


def client_of(nca_id: str) -> str:
    """The admin client id the matrix gives an account it creates."""
    return f"{nca_id}-client"


@dataclass
class World:
    """What one test case works on: the owner's account and, as the endpoint needs, its resources."""

    suffix: str
    function_id: str = ""
    version_id: str = ""
    deployment_id: str = ""
    gpu_spec_id: str = ""
    request_id: str = ""
    telemetry_id: str = ""
    registry_credential_id: str = ""
    asset_id: str = ""
    extra_client: str = ""  # a second client of the owner's account (for …/clients/disassociate)

    @property
    def owner(self) -> str:
        return f"owner-{self.suffix}"

    @property
    def other(self) -> str:
        """An account that has nothing to do with the owner's resources."""
        return f"other-{self.suffix}"

    @property
    def partner_a(self) -> str:
        """The owner's function (and its version) is shared with it, when the case needs a share."""
        return f"partner-a-{self.suffix}"

    @property
    def partner_b(self) -> str:
        """Never shared with yet: the party POST and PATCH …/add authorize."""
        return f"partner-b-{self.suffix}"

    @property
    def owner_client(self) -> str:
        return client_of(self.owner)

    @property
    def other_client(self) -> str:
        return client_of(self.other)

    @property
    def new_account(self) -> str:
        return f"new-{self.suffix}"

    @property
    def doomed_account(self) -> str:
        return f"doomed-{self.suffix}"

    @property
    def new_client(self) -> str:
        return f"new-client-{self.suffix}"


@dataclass(frozen=True)
class Caller:
    """Who made a successful call: its account, and whether it is a JWT (for account listings)."""

    nca_id: str
    jwt: bool
    bound: bool = False  # a key whose resources name another function


Check = Callable[[dict[str, Any], World, Caller], None]


@dataclass(frozen=True)
class Spec:
    needs: frozenset[str] = frozenset()
    body: Callable[[World], Any] | None = None
    query: dict[str, str] = field(default_factory=dict)
    other: Other = NOT_FOUND
    check: Check | None = None
    # Path parameters that are not the world's resource of the same name (e.g. which ncaId).
    path: Callable[[World], dict[str, str]] | None = None
    # For ``other=ANY``: what another account's API key gets (None: the success status).
    other_key: int | None = None


def path_params(endpoint: Endpoint, spec: Spec, world: World) -> dict[str, str]:
    values = {
        "functionId": world.function_id,
        "functionVersionId": world.version_id,
        "versionId": world.version_id,
        "deploymentId": world.deployment_id,
        "gpuSpecId": world.gpu_spec_id,
        "requestId": world.request_id,
        "telemetryId": world.telemetry_id,
        "registryCredentialId": world.registry_credential_id,
        "assetId": world.asset_id,
        "ncaId": world.owner,
        "clientId": world.owner_client,
    }
    if spec.path is not None:
        values.update(spec.path(world))
    missing = [name for name in endpoint.path_params if not values.get(name)]
    assert not missing, f"{endpoint.method} {endpoint.path}: no target for {missing} (add it to Spec.needs)"
    return {name: values[name] for name in endpoint.path_params}


def registry_secret(name: str, password: str = "pw") -> dict[str, str]:
    return {"name": name, "value": base64.b64encode(f"$oauthtoken:{password}".encode()).decode()}


def telemetry_body(name: str) -> dict[str, Any]:
    return {
        "endpoint": "https://metrics.example.com/api/v1/push",
        "protocol": "HTTP",
        "provider": "PROMETHEUS",
        "types": ["METRICS"],
        "secret": {"name": name, "value": "telemetry-token"},
    }


def registry_body(name: str) -> dict[str, Any]:
    return {"registryHostname": "nvcr.io", "secret": registry_secret(name), "artifactTypes": ["CONTAINER"]}


ASSET_BODY = {"contentType": "application/octet-stream", "description": "matrix input"}


# --- success checks: the answer is about the target (owner) or about the caller's own account ---------------


def _ids(items: list[dict[str, Any]], key: str) -> list[str]:
    return [str(item[key]) for item in items]


def _own_function(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["function"]["ncaId"] == caller.nca_id


def _new_version(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["function"]["id"] == world.function_id
    assert body["function"]["versionId"] != world.version_id


def _listed(listing: str, key: str, attribute: str) -> Check:
    """The owner's resource is listed for the owner, never for another account."""

    def check(body: dict[str, Any], world: World, caller: Caller) -> None:
        wanted = getattr(world, attribute)
        if listing == "functionIds":
            found = [str(i) for i in body[listing]]
        else:
            found = _ids(body[listing], key)
        hidden = caller.bound and attribute == "function_id"  # a bound key lists only its function
        assert (wanted in found) is (caller.nca_id == world.owner and not hidden), (wanted, found)

    return check


def _the_version(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert (body["function"]["id"], body["function"]["versionId"]) == (world.function_id, world.version_id)


def _tagged(body: dict[str, Any], world: World, caller: Caller) -> None:
    _the_version(body, world, caller)
    assert body["function"]["tags"] == ["matrix"]


def _versions(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert _ids(body["functions"], "versionId") == [world.version_id]


def _deployment(body: dict[str, Any], world: World, caller: Caller) -> None:
    deployment = body["deployment"]
    assert (deployment["functionId"], deployment["functionVersionId"]) == (world.function_id, world.version_id)
    if world.deployment_id:
        assert deployment["deploymentId"] == world.deployment_id


def _scaled(count: int) -> Check:
    def check(body: dict[str, Any], world: World, caller: Caller) -> None:
        spec = (
            body["gpuSpecification"]
            if "gpuSpecification" in body
            else body["deployment"]["deploymentSpecifications"][0]
        )
        assert spec["gpuSpecificationId"] == world.gpu_spec_id
        assert spec["maxInstances"] == count

    return check


def _deployments(body: dict[str, Any], world: World, caller: Caller) -> None:
    """The owner's deployment is listed for the owner (not for a key bound to another function),
    never for another account."""
    found = _ids(body["deployments"], "deploymentId")
    assert (world.deployment_id in found) is (caller.nca_id == world.owner and not caller.bound), found


def _undeployed(body: dict[str, Any], world: World, caller: Caller) -> None:
    _the_version(body, world, caller)
    assert body["function"]["status"] == "INACTIVE"


def _queues(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["functionId"] == world.function_id
    assert [(q["functionVersionId"], q["queueDepth"]) for q in body["queues"]] == [(world.version_id, 1)]


def _position(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body == {"functionId": world.function_id, "functionVersionId": world.version_id, "positionInQueue": 1}


def _parties(expected: Callable[[World], list[str]], *, version: bool) -> Check:
    def check(body: dict[str, Any], world: World, caller: Caller) -> None:
        dto = body["function"]
        assert (dto["id"], dto["ncaId"]) == (world.function_id, world.owner)
        assert dto.get("versionId") == (world.version_id if version else None)
        assert _ids(dto.get("authorizedParties") or [], "ncaId") == expected(world)

    return check


def _unshared(*, version: bool) -> Check:
    def check(body: dict[str, Any], world: World, caller: Caller) -> None:
        expected = {"id": world.function_id, "ncaId": world.owner}
        if version:
            expected["versionId"] = world.version_id
        assert body == {"function": expected}

    return check


def _function_parties(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert [(f["versionId"], _ids(f["authorizedParties"], "ncaId")) for f in body["functions"]] == [
        (world.version_id, [world.partner_a])
    ]


def _telemetry(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["telemetry"]["telemetryId"] == world.telemetry_id


def _new_telemetry(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["telemetry"]["name"] == f"new-{world.suffix}"


def _credential(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["registryCredential"]["registryCredentialId"] == world.registry_credential_id
    assert body["registryCredential"]["ncaId"] == world.owner


def _new_credential(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["registryCredential"]["ncaId"] == caller.nca_id
    assert body["registryCredential"]["registryCredentialName"] == f"new-{world.suffix}"


def _recognized(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert set(body["recognizedRegistries"]) == {"CONTAINER", "HELM", "MODEL", "RESOURCE"}


def _cluster_groups(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body == {"clusterGroups": []}


def _accounts(body: dict[str, Any], world: World, caller: Caller) -> None:
    listed = _ids(body["cloudAccounts"], "ncaId")
    if caller.jwt:
        assert {world.owner, world.other} <= set(listed)
    else:  # an API key sees its own account only
        assert listed == [caller.nca_id]


def _account(nca_id: Callable[[World], str]) -> Check:
    def check(body: dict[str, Any], world: World, caller: Caller) -> None:
        assert body["account"]["ncaId"] == nca_id(world)

    return check


def _renamed(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert (body["account"]["ncaId"], body["account"]["name"]) == (world.owner, "Renamed")


def _associated(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["account"]["ncaId"] == world.owner
    assert world.new_client in body["account"]["adminClientIds"]


def _disassociated(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["account"]["adminClientIds"] == [world.owner_client]


def _client(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["client"]["clientId"] == world.owner_client
    assert body["client"]["ncaId"] == world.owner


def _new_asset(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert (body["contentType"], body["description"]) == (ASSET_BODY["contentType"], ASSET_BODY["description"])


def _asset(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["asset"]["assetId"] == world.asset_id


def _redirect(body: dict[str, Any], world: World, caller: Caller) -> None:
    assert body["presignedUrl"].startswith(f"http://api.localhost:8080/v2/nvcf/assets/{world.asset_id}/blob?")


FUNCTION = frozenset({"function"})
DEPLOYED = frozenset({"function", "deployment"})
QUEUED = frozenset({"function", "deployment", "queued"})
SHARED = frozenset({"function", "share", "partners"})
SHARING = frozenset({"function", "partners"})
TAGS = {"tags": ["matrix"]}
RATE_LIMIT = {"rateLimit": {"rateLimit": "100-S"}}
FN_AUTH = "/v2/nvcf/authorizations/functions/{functionId}"
VERSION_AUTH = FN_AUTH + "/versions/{functionVersionId}"
DEPLOYMENT = "/v2/nvcf/deployments/functions/{functionId}/versions/{functionVersionId}"
VERSION = "/v2/nvcf/functions/{functionId}/versions/{functionVersionId}"


def _share_b(world: World) -> dict[str, Any]:
    return {"authorizedParties": [{"ncaId": world.partner_b}]}


def _add_b(world: World) -> dict[str, Any]:
    return {"authorizedParty": {"ncaId": world.partner_b}}


def _remove_a(world: World) -> dict[str, Any]:
    return {"authorizedParty": {"ncaId": world.partner_a}}


def _update_deployment(world: World) -> dict[str, Any]:
    spec = deployment_body()["deploymentSpecifications"][0]
    return {"deploymentSpecifications": [{**spec, "gpuSpecificationId": world.gpu_spec_id, "maxInstances": 2}]}


SPECS: dict[str, Spec] = {
    # functions
    "POST /v2/nvcf/functions": Spec(body=lambda w: function_body(), other=OWN, check=_own_function),
    "POST /v2/nvcf/functions/{functionId}/versions": Spec(FUNCTION, body=lambda w: function_body(), check=_new_version),
    "GET /v2/nvcf/functions": Spec(FUNCTION, other=OWN, check=_listed("functions", "id", "function_id")),
    "GET /v2/nvcf/functions/ids": Spec(FUNCTION, other=OWN, check=_listed("functionIds", "", "function_id")),
    "GET /v2/nvcf/functions/{functionId}/versions": Spec(FUNCTION, check=_versions),
    "GET " + VERSION: Spec(FUNCTION, check=_the_version),
    "PUT " + VERSION: Spec(FUNCTION, body=lambda w: TAGS, check=_tagged),
    "PUT /v2/nvcf/metadata/functions/{functionId}/versions/{functionVersionId}": Spec(
        FUNCTION, body=lambda w: TAGS, check=_tagged
    ),
    "DELETE " + VERSION: Spec(DEPLOYED),
    "PUT /v2/nvcf/ratelimit/functions/{functionId}/versions/{functionVersionId}": Spec(
        FUNCTION, body=lambda w: RATE_LIMIT
    ),
    "DELETE /v2/nvcf/ratelimit/functions/{functionId}/versions/{functionVersionId}": Spec(FUNCTION),
    # deployments
    "POST " + DEPLOYMENT: Spec(FUNCTION, body=lambda w: deployment_body(), check=_deployment),
    "GET " + DEPLOYMENT: Spec(DEPLOYED, check=_deployment),
    "PUT " + DEPLOYMENT: Spec(DEPLOYED, body=_update_deployment, check=_scaled(2)),
    "DELETE " + DEPLOYMENT: Spec(DEPLOYED, query={"graceful": "false"}, check=_undeployed),
    "GET /v2/nvcf/deployments": Spec(DEPLOYED, other=OWN, check=_deployments),
    "GET /v2/nvcf/deployments/{deploymentId}": Spec(DEPLOYED, check=_deployment),
    "PATCH /v2/nvcf/deployments/{deploymentId}/gpu-specifications/{gpuSpecId}": Spec(
        DEPLOYED, body=lambda w: {"maxInstances": 3}, check=_scaled(3)
    ),
    # queues
    "GET /v2/nvcf/queues/functions/{functionId}": Spec(QUEUED, check=_queues),
    "GET /v2/nvcf/queues/functions/{functionId}/versions/{versionId}": Spec(QUEUED, check=_queues),
    "GET /v2/nvcf/queues/{requestId}/position": Spec(QUEUED, check=_position),
    # authorizations (the world shares the function and its version with partner A)
    "GET /v2/nvcf/authorizations/functions": Spec(SHARED, other=OWN, check=_listed("functions", "id", "function_id")),
    "POST " + FN_AUTH: Spec(SHARING, body=_share_b, check=_parties(lambda w: [w.partner_b], version=False)),
    "GET " + FN_AUTH: Spec(SHARED, check=_function_parties),
    "DELETE " + FN_AUTH: Spec(SHARED, check=_unshared(version=False)),
    "PATCH " + FN_AUTH + "/add": Spec(
        SHARED, body=_add_b, check=_parties(lambda w: [w.partner_a, w.partner_b], version=False)
    ),
    "PATCH " + FN_AUTH + "/remove": Spec(SHARED, body=_remove_a, check=_parties(lambda w: [], version=False)),
    "POST " + VERSION_AUTH: Spec(SHARING, body=_share_b, check=_parties(lambda w: [w.partner_b], version=True)),
    "GET " + VERSION_AUTH: Spec(SHARED, check=_parties(lambda w: [w.partner_a], version=True)),
    "DELETE " + VERSION_AUTH: Spec(SHARED, check=_unshared(version=True)),
    "PATCH " + VERSION_AUTH + "/add": Spec(
        SHARED, body=_add_b, check=_parties(lambda w: [w.partner_a, w.partner_b], version=True)
    ),
    "PATCH " + VERSION_AUTH + "/remove": Spec(SHARED, body=_remove_a, check=_parties(lambda w: [], version=True)),
    # secrets
    "PUT /v2/nvcf/secrets/functions/{functionId}/versions/{versionId}": Spec(
        FUNCTION, body=lambda w: {"secrets": [{"name": "MATRIX_TOKEN", "value": "s3cr3t"}]}
    ),
    "PUT /v2/nvcf/secrets/telemetries/{telemetryId}": Spec(
        frozenset({"telemetry"}), body=lambda w: {"secret": {"name": f"rotated-{w.suffix}", "value": "s3cr3t"}}
    ),
    # telemetries
    "POST /v2/nvcf/telemetries": Spec(
        body=lambda w: telemetry_body(f"new-{w.suffix}"), other=OWN, check=_new_telemetry
    ),
    "GET /v2/nvcf/telemetries": Spec(
        frozenset({"telemetry"}), other=OWN, check=_listed("telemetries", "telemetryId", "telemetry_id")
    ),
    "GET /v2/nvcf/telemetries/{telemetryId}": Spec(frozenset({"telemetry"}), check=_telemetry),
    "DELETE /v2/nvcf/telemetries/{telemetryId}": Spec(frozenset({"telemetry"})),
    # registry credentials
    "POST /v2/nvcf/registry-credentials": Spec(
        body=lambda w: registry_body(f"new-{w.suffix}"), other=OWN, check=_new_credential
    ),
    "GET /v2/nvcf/registry-credentials": Spec(
        frozenset({"registry"}),
        query={"artifactType": "CONTAINER"},
        other=OWN,
        check=_listed("registryCredentials", "registryCredentialId", "registry_credential_id"),
    ),
    "GET /v2/nvcf/registry-credentials/{registryCredentialId}": Spec(frozenset({"registry"}), check=_credential),
    "PATCH /v2/nvcf/registry-credentials/{registryCredentialId}": Spec(
        frozenset({"registry"}), body=lambda w: {"secret": registry_secret(f"reg-{w.suffix}", "new")}, check=_credential
    ),
    "DELETE /v2/nvcf/registry-credentials/{registryCredentialId}": Spec(frozenset({"registry"})),
    "GET /v2/nvcf/recognized-registries": Spec(other=OWN, check=_recognized),
    # cluster groups
    "GET /v2/nvcf/clusterGroups": Spec(other=OWN, check=_cluster_groups),
    # accounts: an account_setup JWT administers any account; an API key only its own
    "GET /v2/nvcf/accounts": Spec(other=ANY, check=_accounts),
    "POST /v2/nvcf/accounts/{ncaId}": Spec(
        body=lambda w: {"name": "Provisioned"},
        other=ANY,
        path=lambda w: {"ncaId": w.new_account},
        check=_account(lambda w: w.new_account),
    ),
    "GET /v2/nvcf/accounts/{ncaId}": Spec(other=ANY, other_key=403, check=_account(lambda w: w.owner)),
    "PATCH /v2/nvcf/accounts/{ncaId}": Spec(
        body=lambda w: {"name": "Renamed"}, other=ANY, other_key=403, check=_renamed
    ),
    "DELETE /v2/nvcf/accounts/{ncaId}": Spec(
        frozenset({"doomed"}), other=ANY, path=lambda w: {"ncaId": w.doomed_account}
    ),
    "PATCH /v2/nvcf/accounts/{ncaId}/clients/associate": Spec(
        body=lambda w: {"adminClientId": w.new_client}, other=ANY, other_key=403, check=_associated
    ),
    "PATCH /v2/nvcf/accounts/{ncaId}/clients/disassociate": Spec(
        frozenset({"extra_client"}),
        body=lambda w: {"adminClientId": w.extra_client},
        other=ANY,
        other_key=403,
        check=_disassociated,
    ),
    "GET /v2/nvcf/clients/{clientId}": Spec(other=ANY, other_key=404, check=_client),
    # assets
    "POST /v2/nvcf/assets": Spec(body=lambda w: ASSET_BODY, other=OWN, check=_new_asset),
    "GET /v2/nvcf/assets": Spec(frozenset({"asset"}), other=OWN, check=_listed("assets", "assetId", "asset_id")),
    "GET /v2/nvcf/assets/{assetId}": Spec(frozenset({"asset"}), check=_asset),
    "GET /v2/nvcf/assets/{assetId}/content-redirect": Spec(frozenset({"asset"}), check=_redirect),
    "DELETE /v2/nvcf/assets/{assetId}": Spec(frozenset({"asset"})),
}


def endpoint_key(endpoint: Endpoint) -> str:
    return f"{endpoint.method} {endpoint.path}"


@dataclass(frozen=True)
class Expected:
    status: int
    # A 403 for a missing scope (its detail names the endpoint's scopes), not for the account.
    for_scope: bool = False


def targets_function(endpoint: Endpoint) -> bool:
    """The endpoint works on the world's function (named in the path, or through its deployment)."""
    return "{functionId}" in endpoint.path or "{deploymentId}" in endpoint.path


def expected(endpoint: Endpoint, spec: Spec, credential: Credential) -> Expected:
    if credential.authority is CredentialKind.NONE:
        return Expected(401)
    if not credential.grants(endpoint):
        return Expected(403, for_scope=True)
    success = 204 if endpoint.status == 204 else 200
    if credential.bound and targets_function(endpoint):
        return Expected(403)  # "Missing resource entry in ApiKey for the function"
    if credential.bound and "{requestId}" in endpoint.path:
        return Expected(404)  # a request of a function the key is not allowed on is unknown to it
    if not credential.other_account or spec.other == OWN:
        return Expected(success)
    reach = rule(credential.authority, surface_of(endpoint)).reach
    if reach is Reach.ANY:
        return Expected(success)
    if spec.other == NOT_FOUND:
        return Expected(404)
    if spec.other_key is not None:
        return Expected(spec.other_key)
    return Expected(success)


CONTRACT_BY_AREA: dict[str, tuple[str, ...]] = {
    "metadata": ("update_function",),
    "ratelimit": ("update_function",),
    "deployments": ("deploy_function",),
    "queues": ("queue_details",),
    "authorizations": ("authorize_clients",),
    "secrets": ("update_secrets",),
    "telemetries": ("manage_telemetries",),
    "registry-credentials": ("manage_registry_credentials",),
    "recognized-registries": ("manage_registry_credentials",),
    "accounts": ("account_setup",),
    "clients": ("account_setup",),
    "assets": ("invoke_function",),
}
FUNCTION_SCOPES = {"POST": ("register_function",), "PUT": ("update_function",), "DELETE": ("delete_function",)}


def contract_scopes(method: str, path: str) -> tuple[tuple[str, ...], bool]:
    """The scopes and the JWT-only flag the reference (§3.2, §4; NVCF's controllers) gives ``method path``."""
    area = path.removeprefix("/v2/nvcf/").split("/")[0]
    if area == "functions":
        reads = ("list_functions", "list_functions_details")
        return (reads if method == "GET" else FUNCTION_SCOPES[method]), False
    if area == "clusterGroups":
        return ("list_cluster_groups",), True
    if area == "accounts" and method == "GET":
        return ("account_setup", "list_accounts"), False
    if path == "/v2/nvcf/accounts/{ncaId}" and method in ("POST", "DELETE"):
        return ("account_setup",), True
    return CONTRACT_BY_AREA[area], False
