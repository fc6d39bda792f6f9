"""``/v2/nvcf/assets…``: large invocation inputs, stored by cfgate itself behind pre-signed URLs.

Scope ``invoke_function`` (JWT or API key); every asset belongs to the caller's account and
other accounts' assets are 404. Choices where NVCF is silent or S3-specific:

- An asset exists once its bytes are uploaded (as an S3 object does in NVCF): before that it
  is not listed and ``GET``/``content-redirect``/``DELETE`` are 404. ``createdAt`` is the time
  the upload completed. Listings carry ``description``, ``contentType`` and ``createdAt`` too.
- ``uploadUrl`` and ``presignedUrl`` point at cfgate's api service as configured (``--public-url``,
  never the request's Host): ``<api public URL>/v2/nvcf/assets/<assetId>/blob?expires=…&signature=…``,
  valid ``asset_url_ttl_seconds`` (35 min). Those blob routes (``extra_routes``) need no
  bearer: the signature is the credential.
- ``PUT`` must carry the ``Content-Type`` and ``x-amz-meta-nvcf-asset-description`` given at
  creation (else 403, as S3's signed headers); it may be repeated while the URL is valid (the
  last upload wins); more than ``max_asset_bytes`` is 413; it answers 200 with no body.
- ``GET`` on the download URL answers the bytes with the asset's ``Content-Type``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.api import Call, Endpoint
from gateway.api.endpoint import parse_path
from gateway.assets import AssetNotFound
from gateway.assets.service import BLOB_PATH, DESCRIPTION_HEADER
from gateway.problems import BadRequest, NotFound
from gateway.services.functions.asset_models import (
    AssetDto,
    AssetRedirectResponse,
    AssetResponse,
    CreateAssetRequest,
    CreateAssetResponse,
    ListAssetsResponse,
)
from gateway.store.assets import AssetRecord
from gateway.store.clock import rfc3339

if TYPE_CHECKING:
    from gateway.runtime import Runtime

SCOPES = ("invoke_function",)


def _base_url(call: Call) -> str:
    return call.runtime.settings.public_urls.service("api")


def _dto(record: AssetRecord) -> AssetDto:
    created = rfc3339(record.uploaded_at) if record.uploaded_at is not None else None
    return AssetDto(
        assetId=record.asset_id, description=record.description, contentType=record.content_type, createdAt=created
    )


async def _owned(call: Call) -> AssetRecord:
    asset_id = call.path["assetId"]
    try:
        return await call.runtime.assets.get(call.nca_id, asset_id)
    except AssetNotFound:
        raise NotFound(f"Asset '{asset_id}' does not exist for account '{call.nca_id}'") from None


async def create_asset(call: Call) -> CreateAssetResponse:
    body: CreateAssetRequest = call.body
    record = await call.runtime.assets.create(call.nca_id, body.contentType, body.description)
    return CreateAssetResponse(
        assetId=record.asset_id,
        uploadUrl=call.runtime.assets.upload_url(_base_url(call), record),
        contentType=record.content_type,
        description=record.description,
    )


async def list_assets(call: Call) -> ListAssetsResponse:
    return ListAssetsResponse(assets=[_dto(r) for r in await call.runtime.assets.uploaded(call.nca_id)])


async def get_asset(call: Call) -> AssetResponse:
    return AssetResponse(asset=_dto(await _owned(call)))


async def get_asset_content_redirect(call: Call) -> AssetRedirectResponse:
    record = await _owned(call)
    return AssetRedirectResponse(presignedUrl=call.runtime.assets.download_url(_base_url(call), record))


async def delete_asset(call: Call) -> None:
    record = await _owned(call)
    try:
        await call.runtime.assets.delete(call.nca_id, record.asset_id)
    except AssetNotFound:
        raise NotFound(f"Asset '{record.asset_id}' does not exist for account '{call.nca_id}'") from None


ASSET = "/v2/nvcf/assets/{assetId}"

ENDPOINTS = [
    Endpoint(
        "POST", "/v2/nvcf/assets", create_asset, "Create an asset and its pre-signed upload URL", SCOPES,
        body=CreateAssetRequest, response=CreateAssetResponse, tag="assets",
    ),
    Endpoint(
        "GET", "/v2/nvcf/assets", list_assets, "List the account's assets", SCOPES,
        response=ListAssetsResponse, tag="assets",
    ),
    Endpoint("GET", ASSET, get_asset, "Get an asset", SCOPES, response=AssetResponse, tag="assets"),
    Endpoint(
        "GET", ASSET + "/content-redirect", get_asset_content_redirect, "Get a pre-signed download URL of an asset",
        SCOPES, response=AssetRedirectResponse, tag="assets",
    ),
    Endpoint("DELETE", ASSET, delete_asset, "Delete an asset", SCOPES, status=204, tag="assets"),
]  # fmt: skip


# --- pre-signed blob URLs (outside the endpoint table: no bearer, the signature is the credential) ---


def extra_routes(runtime: Runtime) -> list[Route]:
    """Starlette routes serving the upload and download URLs; add them to the api host's app."""
    assets = runtime.assets

    async def _chunks(request: Request) -> AsyncIterator[bytes]:
        try:
            async for chunk in request.stream():
                if chunk:
                    yield chunk
        except ClientDisconnect:
            raise BadRequest("Client disconnected while sending the asset") from None

    async def upload_asset_blob(request: Request) -> Response:
        asset_id = parse_path(request.path_params, ["assetId"])["assetId"]
        await assets.receive(
            asset_id,
            request.query_params.get("expires"),
            request.query_params.get("signature"),
            request.headers.get("content-type"),
            request.headers.get(DESCRIPTION_HEADER),
            request.headers.get("content-length"),
            _chunks(request),
        )
        return Response(status_code=200)

    async def download_asset_blob(request: Request) -> Response:
        asset_id = parse_path(request.path_params, ["assetId"])["assetId"]
        content = await assets.send(
            asset_id, request.query_params.get("expires"), request.query_params.get("signature")
        )
        record = content.record
        # The stored Content-Type exactly (media_type would add a charset to text/* types).
        headers = {
            "content-type": record.content_type,
            "content-length": str(record.size or 0),
            DESCRIPTION_HEADER: record.description,
        }
        if request.method == "HEAD":
            await content.chunks.aclose()
            return Response(status_code=200, headers=headers)
        return StreamingResponse(content.chunks, headers=headers)

    return [
        Route(BLOB_PATH, upload_asset_blob, methods=["PUT"]),
        Route(BLOB_PATH, download_asset_blob, methods=["GET", "HEAD"]),
    ]
