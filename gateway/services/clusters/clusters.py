"""SIS cluster management: ``/v1/accounts/{ncaId}/clusters…`` and the same under ``/v1/si/accounts/…``.

JWT scope ``cluster-management`` (reference §11; API keys never carry it: 403). Choices where the
reference is silent, and where §17 (what nvcf-cli relies on) decides:

* **Account**: the path's ``{ncaId}`` must be the caller's account; any other account, and any
  cluster not in it, is 404 (existence is not disclosed). A body ``ncaId`` other than the path's
  is 400.
* **Status codes**: every success is 200 — register (no 201), PUT, and DELETE, which answers the
  deleted cluster (§17 says nvcf-cli expects 200 there, so not 204). A malformed ``clusterId``
  (not a UUID) is 400.
* **Duplicate** ``clusterName`` in the account: 400 whose detail contains "already exists"
  (§17: ``cluster register --ignore-existing`` looks for those words), not 409.
* **Shapes**: register answers flat ``{clusterId, clusterGroupId, clusterName, clusterGroupName,
  ncaId, clusterCredential}``; the list and ``clusterVersions`` are bare JSON arrays (§17).
* **Credential**: ``clusterCredential`` (``nvcc-…``) is returned by register only; the store keeps
  its sha256. Workers present it on gRPC ``Register`` (``gateway.invocation.workers``). Deleting
  the cluster revokes it and disconnects the cluster's workers (``ClusterRegistry``).
* **Errors** are problem+json with an extra ``error`` member (ICMS answers ``{"error": "..."}``;
  see ``app.py``). Bad input writes nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from gateway.api import Call, Endpoint
from gateway.api.endpoint import Handler
from gateway.auth import cluster_credentials
from gateway.problems import BadRequest, NotFound
from gateway.services.clusters.models import (
    ClusterDto,
    ClusterList,
    ClusterVersionDto,
    ClusterVersionList,
    RegisterClusterRequest,
    RegisterClusterResponse,
    RotateJwksRequest,
    UpdateClusterRequest,
)
from gateway.services.clusters.offers import group_id
from gateway.services.clusters.registry import ClusterRegistry
from gateway.store.clock import now_ms, rfc3339
from gateway.store.clusters import Cluster, DuplicateClusterName

SCOPES = ("cluster-management",)
PREFIXES = ("/v1/accounts/{ncaId}", "/v1/si/accounts/{ncaId}")


def _registry(call: Call) -> ClusterRegistry:
    return call.runtime.cluster_registry


def _account(call: Call) -> str:
    nca_id = call.nca_id
    if call.path["ncaId"] != nca_id:
        raise NotFound(f"Account '{call.path['ncaId'][:64]}' not found")
    return nca_id


def _cluster_id(call: Call) -> str:
    raw = call.path["clusterId"]
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else _bad_id(raw)
    except ValueError:
        return _bad_id(raw)


def _bad_id(raw: str) -> str:
    raise BadRequest(f"Invalid clusterId '{raw[:64]}': must be a UUID")


async def _owned(call: Call) -> Cluster:
    nca_id = _account(call)
    cluster_id = _cluster_id(call)
    cluster = await _registry(call).repository.get(nca_id, cluster_id)
    if cluster is None:
        raise NotFound(f"Cluster '{cluster_id}' not found")
    return cluster


def _same_account(body_nca_id: str | None, nca_id: str) -> None:
    if body_nca_id is not None and body_nca_id != nca_id:
        raise BadRequest(f"ncaId '{body_nca_id}' in the body does not match the account '{nca_id}' in the path")


def _duplicate(name: str, nca_id: str) -> BadRequest:
    return BadRequest(f"Cluster with name '{name}' already exists in account '{nca_id}'")


def cluster_dto(cluster: Cluster) -> ClusterDto:
    spec = {k: v for k, v in cluster.spec.items() if k not in ("clusterName", "clusterGroupName", "ncaId")}
    return ClusterDto.model_validate(
        {
            **spec,
            "clusterId": cluster.cluster_id,
            "clusterName": cluster.name,
            "clusterGroupId": group_id(cluster.nca_id, cluster.group_name),
            "clusterGroupName": cluster.group_name,
            "ncaId": cluster.nca_id,
            "createdAt": rfc3339(cluster.created_at),
            "lastUpdatedAt": rfc3339(cluster.updated_at),
        }
    )


async def register_cluster(call: Call) -> RegisterClusterResponse:
    nca_id = _account(call)
    request: RegisterClusterRequest = call.body
    _same_account(request.ncaId, nca_id)
    credential = cluster_credentials.generate()
    now = now_ms()
    cluster = Cluster(
        cluster_id=str(uuid.uuid4()),
        nca_id=nca_id,
        name=request.clusterName,
        group_name=request.clusterGroupName,
        credential_hash=cluster_credentials.credential_hash(credential),
        spec=request.dump(),
        created_at=now,
        updated_at=now,
    )
    try:
        await _registry(call).repository.insert(cluster)
    except DuplicateClusterName:
        raise _duplicate(cluster.name, nca_id) from None
    return RegisterClusterResponse(
        clusterId=cluster.cluster_id,
        clusterGroupId=group_id(nca_id, cluster.group_name),
        clusterName=cluster.name,
        clusterGroupName=cluster.group_name,
        ncaId=nca_id,
        clusterCredential=credential,
    )


async def list_clusters(call: Call) -> ClusterList:
    nca_id = _account(call)
    return ClusterList([cluster_dto(c) for c in await _registry(call).repository.for_account(nca_id)])


async def get_cluster(call: Call) -> ClusterDto:
    return cluster_dto(await _owned(call))


async def update_cluster(call: Call) -> ClusterDto:
    cluster = await _owned(call)
    request: UpdateClusterRequest = call.body
    _same_account(request.ncaId, cluster.nca_id)
    given = request.model_fields_set - {"ncaId"}
    spec = {**cluster.spec, **request.model_dump(mode="json", include=given)}
    spec = {k: v for k, v in spec.items() if v is not None}
    updated = Cluster(
        cluster_id=cluster.cluster_id,
        nca_id=cluster.nca_id,
        name=spec["clusterName"],
        group_name=spec["clusterGroupName"],
        credential_hash=cluster.credential_hash,
        spec=spec,
        created_at=cluster.created_at,
        updated_at=max(now_ms(), cluster.updated_at),
    )
    try:
        await _registry(call).update(cluster, updated)
    except DuplicateClusterName:
        raise _duplicate(updated.name, cluster.nca_id) from None
    return cluster_dto(updated)


async def delete_cluster(call: Call) -> ClusterDto:
    cluster = await _owned(call)
    if not await _registry(call).delete(cluster):
        raise NotFound(f"Cluster '{cluster.cluster_id}' not found")  # deleted concurrently
    return cluster_dto(cluster)


async def list_cluster_versions(call: Call) -> ClusterVersionList:
    nca_id = _account(call)
    clusters = await _registry(call).repository.for_account(nca_id)
    return ClusterVersionList(
        [
            ClusterVersionDto(clusterId=c.cluster_id, clusterName=c.name, nvcaVersion=c.spec["nvcaVersion"])
            for c in clusters
        ]
    )


async def rotate_jwks(call: Call) -> ClusterDto:
    """The caller's own cluster only (no account in the path): any other is 404."""
    cluster_id = _cluster_id(call)
    cluster = await _registry(call).repository.get(call.nca_id, cluster_id)
    if cluster is None:
        raise NotFound(f"Cluster '{cluster_id}' not found")
    request: RotateJwksRequest = call.body
    spec = {**cluster.spec, **request.model_dump(mode="json", include=request.model_fields_set)}
    rotated = dataclasses.replace(cluster, spec=spec, updated_at=max(now_ms(), cluster.updated_at))
    await _registry(call).repository.update(rotated)
    return cluster_dto(rotated)


def _named(handler: Handler, name: str) -> Handler:
    """The same handler under another name: operation ids must be unique across both prefixes."""

    async def run(call: Call) -> Any:
        return await handler(call)

    run.__name__ = name
    return run


def _endpoints(prefix: str, alias: Callable[[Handler], Handler]) -> list[Endpoint]:
    c = prefix + "/clusters"
    one = c + "/{clusterId}"
    return [
        Endpoint("POST", c, alias(register_cluster), "Register a cluster (returns its worker credential once)",
                 SCOPES, jwt_only=True, body=RegisterClusterRequest, response=RegisterClusterResponse, tag="clusters"),
        Endpoint("GET", c, alias(list_clusters), "List the account's clusters", SCOPES, jwt_only=True,
                 response=ClusterList, tag="clusters"),
        Endpoint("GET", one, alias(get_cluster), "Get a cluster", SCOPES, jwt_only=True,
                 response=ClusterDto, tag="clusters"),
        Endpoint("PUT", one, alias(update_cluster), "Update a cluster (fields given are replaced)", SCOPES,
                 jwt_only=True, body=UpdateClusterRequest, response=ClusterDto, tag="clusters"),
        Endpoint("DELETE", one, alias(delete_cluster), "Delete a cluster, revoke its credential",
                 SCOPES, jwt_only=True, response=ClusterDto, tag="clusters"),
        Endpoint("GET", prefix + "/clusterVersions", alias(list_cluster_versions),
                 "The NVCA version of each of the account's clusters", SCOPES, jwt_only=True,
                 response=ClusterVersionList, tag="clusters"),
    ]  # fmt: skip


ENDPOINTS = [
    Endpoint(
        "PUT",
        "/v1/nvca/clusters/{clusterId}/jwks",
        rotate_jwks,
        "Rotate a cluster's JSON Web Key Set (nvcf-cli cluster rotate)",
        SCOPES,
        jwt_only=True,
        body=RotateJwksRequest,
        response=ClusterDto,
        tag="clusters",
    ),  # fmt: skip
    *_endpoints(PREFIXES[0], lambda handler: handler),
    *_endpoints(PREFIXES[1], lambda handler: _named(handler, handler.__name__ + "_si")),
]
