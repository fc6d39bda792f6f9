"""Asset bytes in an S3-compatible bucket: key ``assets/<ncaId>/<assetId>``.

An upload is spooled to a private temporary file first (S3's PUT needs the length before the
body, and a broken or oversized upload must leave nothing behind), then streamed to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from gateway.assets.blobs import CHUNK, BlobTooLarge, _segment
from gateway.objectstore.s3 import S3Bucket

PREFIX = "assets/"


class S3BlobStore:
    def __init__(self, bucket: S3Bucket, spool_dir: Path | None = None) -> None:
        self.bucket = bucket
        self.spool_dir = spool_dir

    @staticmethod
    def key(nca_id: str, asset_id: str) -> str:
        return f"{PREFIX}{_segment(nca_id)}/{_segment(asset_id)}"

    async def write(self, nca_id: str, asset_id: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        fd, name = tempfile.mkstemp(prefix=".asset.", suffix=".part", dir=self.spool_dir)  # 0600
        spooled = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as handle:
                buffer = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise BlobTooLarge(limit)
                    buffer += chunk
                    if len(buffer) >= CHUNK:
                        await asyncio.to_thread(handle.write, buffer)
                        buffer.clear()
                if buffer:
                    await asyncio.to_thread(handle.write, buffer)
            await self.bucket.put_file(self.key(nca_id, asset_id), spooled)
        finally:
            with contextlib.suppress(FileNotFoundError):
                spooled.unlink()
        return size

    def read(self, nca_id: str, asset_id: str) -> AsyncIterator[bytes]:
        return self.bucket.get(self.key(nca_id, asset_id))

    async def exists(self, nca_id: str, asset_id: str) -> bool:
        return await self.bucket.exists(self.key(nca_id, asset_id))

    async def delete(self, nca_id: str, asset_id: str) -> None:
        await self.bucket.delete(self.key(nca_id, asset_id))

    async def delete_account(self, nca_id: str) -> None:
        for item in await self.bucket.list(f"{PREFIX}{_segment(nca_id)}/"):
            await self.bucket.delete(item.key)
