"""Assets: records, blobs and the pre-signed URLs that move the bytes in and out.

The URLs imitate S3's pre-signed URLs: ``<base>/v2/nvcf/assets/<assetId>/blob?expires=<epoch s>
&signature=<hex>``. The signature is the only credential. It binds the method, the asset id and
the expiry, and for uploads also the two headers the client must send (``Content-Type`` and
``x-amz-meta-nvcf-asset-description``), exactly as S3 binds signed headers: a different value
makes the signature not match (403).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass
from urllib.parse import urlencode

from gateway.assets.blobs import BlobStore, BlobTooLarge
from gateway.assets.signing import UrlSigner, parse_expiry
from gateway.objectstore.errors import ObjectStoreError
from gateway.objectstore.problems import object_store_problem
from gateway.problems import Forbidden, NotFound, PayloadTooLarge
from gateway.store.assets import AssetRecord, AssetRepository
from gateway.store.clock import now_ms

DESCRIPTION_HEADER = "x-amz-meta-nvcf-asset-description"
BLOB_PATH = "/v2/nvcf/assets/{assetId}/blob"
# Upload URLs never used are forgotten after a day (their URL expired long before).
PENDING_RETENTION_MS = 24 * 3600 * 1000


class AssetNotFound(Exception):
    """No uploaded asset with that id in that account."""


@dataclass(frozen=True, slots=True)
class AssetContent:
    record: AssetRecord
    chunks: AsyncGenerator[bytes, None]


class AssetService:
    def __init__(
        self, records: AssetRepository, blobs: BlobStore, signer: UrlSigner, *, url_ttl_seconds: int, max_bytes: int
    ) -> None:
        self.records = records
        self.blobs = blobs
        self._signer = signer
        self.url_ttl_seconds = url_ttl_seconds
        self.max_bytes = max_bytes

    # --- control plane -------------------------------------------------------------------------

    async def create(self, nca_id: str, content_type: str, description: str) -> AssetRecord:
        now = now_ms()
        await self.records.purge_pending(nca_id, now - PENDING_RETENTION_MS)
        record = AssetRecord(str(uuid.uuid4()), nca_id, content_type, description, None, None, now)
        await self.records.insert(record)
        return record

    async def uploaded(self, nca_id: str) -> list[AssetRecord]:
        return await self.records.uploaded(nca_id)

    async def get(self, nca_id: str, asset_id: str) -> AssetRecord:
        """An uploaded asset of the account; ``AssetNotFound`` otherwise (other accounts' too)."""
        record = await self.records.owned(nca_id, asset_id)
        if record is None or not record.uploaded:
            raise AssetNotFound(asset_id)
        return record

    async def delete(self, nca_id: str, asset_id: str) -> None:
        await self.get(nca_id, asset_id)
        if await self.records.delete(nca_id, asset_id):
            try:
                await self.blobs.delete(nca_id, asset_id)
            except ObjectStoreError as exc:
                # The record is gone (the asset no longer exists for anyone); the orphaned
                # object is harmless but the caller should know the store is in trouble.
                raise object_store_problem(exc) from None

    async def drop_account(self, nca_id: str) -> None:
        """Remove every blob of a deleted account (its rows are gone with the account)."""
        await self.blobs.delete_account(nca_id)

    # --- for the invocation layer --------------------------------------------------------------

    async def read(self, nca_id: str, asset_id: str) -> AssetContent:
        """The bytes of an uploaded asset of ``nca_id``; ``AssetNotFound`` if there is none."""
        record = await self.get(nca_id, asset_id)
        return AssetContent(record, await self._open(record))

    # --- pre-signed URLs -------------------------------------------------------------------------

    def upload_url(self, base_url: str, record: AssetRecord, expires: int | None = None) -> str:
        expires = self._expiry(expires)
        signature = self._signer.sign("PUT", record.asset_id, str(expires), record.content_type, record.description)
        return self._url(base_url, record.asset_id, expires, signature)

    def download_url(self, base_url: str, record: AssetRecord, expires: int | None = None) -> str:
        expires = self._expiry(expires)
        signature = self._signer.sign("GET", record.asset_id, str(expires))
        return self._url(base_url, record.asset_id, expires, signature)

    async def receive(
        self,
        asset_id: str,
        expires: str | None,
        signature: str | None,
        content_type: str | None,
        description: str | None,
        declared_length: str | None,
        chunks: AsyncIterable[bytes],
    ) -> AssetRecord:
        """Store an upload made through an upload URL (403 bad/expired signature, 413 too large)."""
        stamp = self._checked_expiry(expires, signature)
        parts = ("PUT", asset_id, stamp, (content_type or "").strip(), (description or "").strip())
        if not self._signer.verify(signature or "", *parts):
            raise Forbidden("The request signature we calculated does not match the signature you provided")
        if (
            declared_length is not None
            and declared_length.isascii()
            and declared_length.isdigit()
            and int(declared_length) > self.max_bytes
        ):
            raise PayloadTooLarge(f"Asset exceeds the limit of {self.max_bytes} bytes")
        record = await self.records.get(asset_id)
        if record is None:
            raise NotFound(f"Asset '{asset_id}' not found")
        try:
            size = await self.blobs.write(record.nca_id, asset_id, chunks, self.max_bytes)
        except BlobTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except ObjectStoreError as exc:
            raise object_store_problem(exc) from None
        if not await self.records.mark_uploaded(asset_id, size, now_ms()):
            await self.blobs.delete(record.nca_id, asset_id)  # deleted while the bytes arrived
            raise NotFound(f"Asset '{asset_id}' not found")
        return record

    async def send(self, asset_id: str, expires: str | None, signature: str | None) -> AssetContent:
        """The bytes behind a download URL (403 bad/expired signature, 404 gone)."""
        stamp = self._checked_expiry(expires, signature)
        if not self._signer.verify(signature or "", "GET", asset_id, stamp):
            raise Forbidden("The request signature we calculated does not match the signature you provided")
        record = await self.records.get(asset_id)
        if record is None or not record.uploaded:
            raise NotFound(f"Asset '{asset_id}' not found")
        try:
            return AssetContent(record, await self._open(record))
        except AssetNotFound:
            raise NotFound(f"Asset '{asset_id}' not found") from None

    # --- helpers ---------------------------------------------------------------------------------

    async def _open(self, record: AssetRecord) -> AsyncGenerator[bytes, None]:
        """Open the blob now (so a missing file is a 404, not a broken response)."""
        chunks = self.blobs.read(record.nca_id, record.asset_id)
        try:
            first = await anext(chunks, b"")
        except FileNotFoundError:
            raise AssetNotFound(record.asset_id) from None
        except ObjectStoreError as exc:
            raise object_store_problem(exc) from None

        async def stream() -> AsyncGenerator[bytes, None]:
            try:
                if first:
                    yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()

        return stream()

    def _expiry(self, expires: int | None) -> int:
        return int(time.time()) + self.url_ttl_seconds if expires is None else expires

    @staticmethod
    def _checked_expiry(expires: str | None, signature: str | None) -> str:
        stamp = parse_expiry(expires)
        if stamp is None or not signature:
            raise Forbidden("Request signature is missing or malformed")
        if stamp < time.time():
            raise Forbidden("Request has expired")
        return str(stamp)

    @staticmethod
    def _url(base_url: str, asset_id: str, expires: int, signature: str) -> str:
        path = BLOB_PATH.format(assetId=asset_id)
        return f"{base_url.rstrip('/')}{path}?{urlencode({'expires': expires, 'signature': signature})}"
