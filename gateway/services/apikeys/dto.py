"""KeyDto rendering (snake_case, RFC 3339 times), as the NVCF API Keys service answers."""

from __future__ import annotations

from typing import Any

from gateway.store.apikeys import ApiKeyRecord
from gateway.store.clock import rfc3339


def key_dto(record: ApiKeyRecord, *, value: str | None = None, authorizations: bool = True) -> dict[str, Any]:
    dto: dict[str, Any] = {"id": record.id}
    if value is not None:
        dto["value"] = value
    dto.update(
        status=record.status,
        owner_type=record.owner_type,
        owner_id=record.owner_id,
        issuer_service_id=record.issuer_service_id,
        audience_service_ids=record.audience_service_ids,
        description=record.description,
        created_at=rfc3339(record.created_at),
        expires_at=rfc3339(record.expires_at),
    )
    if authorizations:
        dto["authorizations"] = record.authorizations
    return dto
