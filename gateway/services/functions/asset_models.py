"""Asset DTOs (NVCF ``rest/asset/dto``: CreateAssetRequest/Response, AssetDto, AssetRedirectResponse).

``contentType`` follows NVCF's check ``^(\\w+)/([-+.\\w]+)$``. The description travels back as the
``x-amz-meta-nvcf-asset-description`` header of the upload, so it must be printable ASCII
(1–1024 characters, surrounding spaces dropped).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints, field_validator

from gateway.api.models import ApiModel

CONTENT_TYPE_PATTERN = r"^[A-Za-z0-9_]+/[-+.A-Za-z0-9_]+$"


class CreateAssetRequest(ApiModel):
    contentType: Annotated[str, StringConstraints(min_length=3, max_length=256, pattern=CONTENT_TYPE_PATTERN)]
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[\x20-\x7e]+$")]

    @field_validator("description", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class CreateAssetResponse(ApiModel):
    assetId: str
    uploadUrl: str
    contentType: str
    description: str


class AssetDto(ApiModel):
    assetId: str
    description: str | None = None
    contentType: str | None = None
    createdAt: str | None = None


class AssetResponse(ApiModel):
    asset: AssetDto


class ListAssetsResponse(ApiModel):
    assets: list[AssetDto]


class AssetRedirectResponse(ApiModel):
    presignedUrl: str
