"""``/v2/nvcf/registry-credentials`` and ``/v2/nvcf/recognized-registries``.

Follows NVCF's ``RegistryCredentialManagementController``/``…Facade``/``RegistryCredentialService``:

* ``POST`` and ``GET``/``PATCH`` of one credential → ``{"registryCredential": RegistryCredentialDetailsDto}``;
  the list → ``{"registryCredentials": [...]}``; ``DELETE`` → 204.
* The secret's value must be a base64 string of ``username:password`` (both non-blank, exactly one
  colon); for ``*nvcr.io`` and ``*ngc.nvidia.com`` hosts the username must be ``$oauthtoken``.
  Anything else is 400. The value is sealed (context ``registry:<credentialId>:<name>``) and
  never returned; the secret's name is the credential's ``registryCredentialName``.
* The hostname must be a recognized registry for every requested artifact type (400); the
  recognized registry's name becomes ``registryName``. Hostname + credential name are unique in an
  account (409). An account may hold ``limits.maxRegistryCredentialsAllowed`` credentials (NVCF's
  default 25; one more is 400).
* ``PATCH {secret?, artifactTypeEnums?}`` needs at least one of them (400); types are added to
  the existing ones and must be recognized for the credential's host.
* ``GET ?artifactType=…&provisionedBy=…`` filters (comma-separated or repeated, any case; default
  all); a credential matches when it has any of the types.
* ``DELETE`` of a ``SYSTEM``-provisioned credential is 400. (NVCF also refuses while a function
  still needs the credential; that check arrives with image pulls, not here.)
* Another account's credential, like an unknown id, is 404.

Recognized registries: NVCF reads them from deployment configuration, which the reference does not
list. cfgate serves the static table ``RECOGNIZED`` below (well-known public registries; ``*`` in
a hostname matches one or more characters of a label sequence, e.g. ECR/ACR/GAR hosts), answered
as ``{"recognizedRegistries": {TYPE: [{"name", "hostname"}]}}`` sorted by name.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import uuid
from dataclasses import replace

from pydantic import ValidationError

from gateway.api import Call, Endpoint
from gateway.api.validation import bad_request
from gateway.problems import BadRequest, Conflict, NotFound
from gateway.services.functions.models import Secret
from gateway.services.functions.registry_models import (
    AddRegistryCredentialRequest,
    ArtifactType,
    ListRegistryCredentialDetailsResponse,
    ProvisionedBy,
    RecognizedRegistriesResponse,
    RecognizedRegistry,
    RegistryCredentialDetailsDto,
    RegistryCredentialDetailsResponse,
    RegistryListQuery,
    UpdateRegistryCredentialRequest,
    ordered_artifacts,
)
from gateway.store.clock import now_ms, rfc3339
from gateway.store.registries import RegistryCredential, RegistryCredentialRepository

SCOPES = ("manage_registry_credentials",)
DEFAULT_MAX_REGISTRY_CREDENTIALS = 25
NGC = "NGC Private Registry"
DOCKER_HUB = "Docker Hub"
GHCR = "GitHub Container Registry"
ECR_PUBLIC = "Amazon ECR Public"
ECR = "Amazon ECR"
ACR = "Azure Container Registry"
GAR = "Google Artifact Registry"

# Artifact type → (registry name, hostname or hostname pattern). A hostname has one name everywhere.
RECOGNIZED: dict[ArtifactType, tuple[tuple[str, str], ...]] = {
    ArtifactType.CONTAINER: (
        (NGC, "nvcr.io"),
        (DOCKER_HUB, "docker.io"),
        (GHCR, "ghcr.io"),
        (ECR_PUBLIC, "public.ecr.aws"),
        (ECR, "*.dkr.ecr.*.amazonaws.com"),
        (ACR, "*.azurecr.io"),
        (GAR, "*-docker.pkg.dev"),
        ("Quay", "quay.io"),
    ),
    ArtifactType.HELM: (
        (NGC, "helm.ngc.nvidia.com"),
        (DOCKER_HUB, "docker.io"),
        (GHCR, "ghcr.io"),
        (ECR_PUBLIC, "public.ecr.aws"),
        (ECR, "*.dkr.ecr.*.amazonaws.com"),
        (ACR, "*.azurecr.io"),
        (GAR, "*-docker.pkg.dev"),
    ),
    ArtifactType.MODEL: (
        (NGC, "api.ngc.nvidia.com"),
        ("Hugging Face", "huggingface.co"),
    ),
    ArtifactType.RESOURCE: ((NGC, "api.ngc.nvidia.com"),),
}
# Other spellings of Docker Hub's registry host.
ALIASES = {"registry-1.docker.io": "docker.io", "index.docker.io": "docker.io", "registry.hub.docker.com": "docker.io"}
INVALID_SECRET = "Invalid request: Registry credential secret must be base64 encoded username:password format"
MISSING_OAUTHTOKEN = "Invalid request: Missing $oauthtoken username in NGC registry credential"


def recognized_name(artifact_type: ArtifactType, hostname: str) -> str | None:
    host = hostname.strip().rstrip(".").lower()
    host = ALIASES.get(host, host)
    for name, pattern in RECOGNIZED[artifact_type]:
        if host == pattern or ("*" in pattern and fnmatch.fnmatchcase(host, pattern)):
            return name
    return None


def _registry_name(types: list[ArtifactType], hostname: str) -> str:
    names = set()
    for artifact_type in types:
        name = recognized_name(artifact_type, hostname)
        if name is None:
            raise BadRequest(
                f"Invalid request: {artifact_type.value} registry with hostname {hostname} is not yet recognized"
            )
        names.add(name)
    return sorted(names)[0]


def validate_secret(hostname: str, secret: Secret) -> str:
    """The secret's value (a base64 ``username:password``) as given, or 400."""
    if not isinstance(secret.value, str):
        raise BadRequest(INVALID_SECRET)
    text = secret.value.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(INVALID_SECRET) from None
    parts = raw.split(":")
    while len(parts) > 1 and parts[-1] == "":  # Java's String.split drops trailing empty parts
        parts.pop()
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise BadRequest(INVALID_SECRET)
    host = hostname.lower()
    if (host.endswith("nvcr.io") or host.endswith("ngc.nvidia.com")) and "$oauthtoken" not in raw:
        raise BadRequest(MISSING_OAUTHTOKEN)
    return secret.value


def _seal(call: Call, credential_id: str, secret: Secret, value: str) -> str:
    return call.runtime.secretbox.seal(value, f"registry:{credential_id}:{secret.name}")


def credential_dto(credential: RegistryCredential) -> RegistryCredentialDetailsDto:
    spec = credential.spec
    return RegistryCredentialDetailsDto(
        registryCredentialId=credential.credential_id,
        ncaId=credential.nca_id,
        registryCredentialName=credential.secret_name,
        registryName=spec["registryName"],
        registryHostname=spec["registryHostname"],
        artifactTypes=ordered_artifacts(spec["artifactTypes"]),
        tags=spec.get("tags"),
        description=spec.get("description"),
        provisionedBy=spec.get("provisionedBy", ProvisionedBy.USER.value),
        lastUpdatedAt=rfc3339(credential.updated_at),
        createdAt=rfc3339(credential.created_at),
    )


def _repository(call: Call) -> RegistryCredentialRepository:
    return RegistryCredentialRepository(call.runtime.store.engine)


async def _max_credentials(call: Call) -> int:
    account = await call.runtime.accounts.get(call.nca_id)
    limit = (account.limits if account else {}).get("maxRegistryCredentialsAllowed")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else DEFAULT_MAX_REGISTRY_CREDENTIALS


def _same_key(credential: RegistryCredential, hostname: str, name: str) -> bool:
    return credential.spec.get("registryHostname") == hostname and credential.secret_name == name


async def add_registry_credential(call: Call) -> RegistryCredentialDetailsResponse:
    request: AddRegistryCredentialRequest = call.body
    hostname, name = request.registryHostname, request.secret.name
    value = validate_secret(hostname, request.secret)
    registry_name = _registry_name(request.artifactTypes, hostname)
    repository = _repository(call)
    existing = await repository.for_account(call.nca_id)
    limit = await _max_credentials(call)
    if len(existing) >= limit:
        raise BadRequest(
            f"Account '{call.nca_id}': Cannot add registry credential - maximum allowed registry credentials "
            f"({limit}) exceeded. Current count: {len(existing)}"
        )
    if any(_same_key(c, hostname, name) for c in existing):
        raise Conflict(
            f"Account '{call.nca_id}': Registry credential '{name}' for hostname '{hostname}' already exists in "
            "the account - Registry credentials must have unique hostname and credential name within an account"
        )
    now = now_ms()
    credential_id = str(uuid.uuid4())
    spec: dict[str, object] = {
        "registryName": registry_name,
        "registryHostname": hostname,
        "artifactTypes": [t.value for t in request.artifactTypes],
        "provisionedBy": ProvisionedBy.USER.value,
    }
    if request.tags is not None:
        spec["tags"] = list(dict.fromkeys(request.tags))
    if request.description is not None:
        spec["description"] = request.description
    credential = RegistryCredential(
        credential_id=credential_id,
        nca_id=call.nca_id,
        spec=spec,
        secret_name=name,
        ciphertext=_seal(call, credential_id, request.secret, value),
        created_at=now,
        updated_at=now,
    )
    await repository.insert(credential)
    return RegistryCredentialDetailsResponse(registryCredential=credential_dto(credential))


def _filters(call: Call) -> RegistryListQuery:
    """Repeated parameters count too (nvcf-cli sends ``artifactType=A&artifactType=B``)."""
    params = call.request.query_params
    raw = {name: ",".join(params.getlist(name)) for name in ("artifactType", "provisionedBy") if name in params}
    try:
        return RegistryListQuery.model_validate(raw)
    except ValidationError as exc:
        raise bad_request(exc) from None


async def list_registry_credentials(call: Call) -> ListRegistryCredentialDetailsResponse:
    query = _filters(call)
    types = set(query.artifactType or ArtifactType)
    provisioners = {p.value for p in query.provisionedBy or ProvisionedBy}
    credentials = [
        credential_dto(c)
        for c in await _repository(call).for_account(call.nca_id)
        if types.intersection(ArtifactType(t) for t in c.spec["artifactTypes"])
        and c.spec.get("provisionedBy", ProvisionedBy.USER.value) in provisioners
    ]
    return ListRegistryCredentialDetailsResponse(registryCredentials=credentials)


async def _owned(call: Call) -> RegistryCredential:
    credential_id = call.path["registryCredentialId"]
    credential = await _repository(call).get(call.nca_id, credential_id)
    if credential is None:
        raise NotFound(f"Registry credential '{credential_id}' not found in account '{call.nca_id}'")
    return credential


async def get_registry_credential(call: Call) -> RegistryCredentialDetailsResponse:
    return RegistryCredentialDetailsResponse(registryCredential=credential_dto(await _owned(call)))


async def update_registry_credential(call: Call) -> RegistryCredentialDetailsResponse:
    request: UpdateRegistryCredentialRequest = call.body
    credential = await _owned(call)
    if not request.artifactTypeEnums and request.secret is None:
        raise BadRequest("Invalid request: Either secret or artifact types must be specified")
    hostname = credential.spec["registryHostname"]
    value = validate_secret(hostname, request.secret) if request.secret is not None else None
    for artifact_type in request.artifactTypeEnums or []:
        if recognized_name(artifact_type, hostname) is None:
            raise BadRequest(
                f"Invalid request: '{credential.spec['registryName']}' with hostname '{hostname}' not recognized "
                f"for artifact type '{artifact_type.value}'"
            )
    repository = _repository(call)
    if request.secret is not None:
        name = request.secret.name
        others = [c for c in await repository.for_account(call.nca_id) if c.credential_id != credential.credential_id]
        if any(_same_key(c, hostname, name) for c in others):
            raise Conflict(
                f"Account '{call.nca_id}': Registry credential '{credential.credential_id}' with name '{name}' for "
                f"hostname '{hostname}' exists - Registry credentials must have unique hostname and credential "
                "name within an account"
            )
    spec = dict(credential.spec)
    added = request.artifactTypeEnums or []
    spec["artifactTypes"] = [t.value for t in ordered_artifacts([*spec["artifactTypes"], *added])]
    updated = replace(credential, spec=spec, updated_at=max(now_ms(), credential.updated_at + 1))
    if request.secret is not None and value is not None:
        sealed = _seal(call, credential.credential_id, request.secret, value)
        updated = replace(updated, secret_name=request.secret.name, ciphertext=sealed)
    await repository.update(updated)
    return RegistryCredentialDetailsResponse(registryCredential=credential_dto(updated))


async def delete_registry_credential(call: Call) -> None:
    credential = await _owned(call)
    if credential.spec.get("provisionedBy") == ProvisionedBy.SYSTEM.value:
        raise BadRequest("Invalid request: Cannot delete system provisioned registry credential")
    await _repository(call).delete(call.nca_id, credential.credential_id)


def recognized_registries() -> RecognizedRegistriesResponse:
    return RecognizedRegistriesResponse(
        recognizedRegistries={
            artifact_type: [RecognizedRegistry(name=n, hostname=h) for n, h in sorted(entries)]
            for artifact_type, entries in RECOGNIZED.items()
        }
    )


async def list_recognized_registries(call: Call) -> RecognizedRegistriesResponse:
    _ = call.nca_id  # an unmapped JWT client is NVCF's 404, as on every account endpoint
    return recognized_registries()


CREDENTIAL = "/v2/nvcf/registry-credentials/{registryCredentialId}"

ENDPOINTS = [
    Endpoint(
        "POST", "/v2/nvcf/registry-credentials", add_registry_credential, "Add a registry credential to the account",
        SCOPES, body=AddRegistryCredentialRequest, response=RegistryCredentialDetailsResponse, tag="registries",
    ),
    Endpoint(
        "GET", "/v2/nvcf/registry-credentials", list_registry_credentials, "List the account's registry credentials",
        SCOPES, query=RegistryListQuery, response=ListRegistryCredentialDetailsResponse, tag="registries",
    ),
    Endpoint(
        "GET", CREDENTIAL, get_registry_credential, "Get a registry credential", SCOPES,
        response=RegistryCredentialDetailsResponse, tag="registries",
    ),
    Endpoint(
        "PATCH", CREDENTIAL, update_registry_credential,
        "Replace a registry credential's secret and/or add artifact types", SCOPES,
        body=UpdateRegistryCredentialRequest, response=RegistryCredentialDetailsResponse, tag="registries",
    ),
    Endpoint(
        "DELETE", CREDENTIAL, delete_registry_credential, "Delete a registry credential", SCOPES, status=204,
        tag="registries",
    ),
    Endpoint(
        "GET", "/v2/nvcf/recognized-registries", list_recognized_registries,
        "List the registries credentials can be added for", SCOPES, response=RecognizedRegistriesResponse,
        tag="registries",
    ),
]  # fmt: skip
