"""Base model for NVCF JSON (camelCase, unknown fields ignored, nulls omitted on output)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """Requests ignore unknown fields (nvcf-cli sends extras such as ``authorizedParties``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=False)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is rendered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
