"""Where large results (the zips behind a 302 ``Location``) are kept until they expire.

``LocalResultFiles``: ``<data_dir>/results/<requestId>.zip`` (0600), the embedded default: only the
host that wrote a result can serve it. ``S3ResultFiles``: key ``results/<requestId>.zip`` in the
shared bucket, so every gateway host behind a load balancer serves every result.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from gateway.objectstore.s3 import S3Bucket
from gateway.private_files import make_private_dir, write_private

PREFIX = "results/"


class ResultFiles(Protocol):
    async def put(self, request_id: str, data: bytes) -> None: ...

    async def get(self, request_id: str) -> bytes | None:
        """The stored zip, None if there is none (expired, swept or never written)."""
        ...

    async def sweep(self, older_than: float) -> int:
        """Delete results stored before ``older_than`` (epoch s); how many."""
        ...


class LocalResultFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, request_id: str) -> Path:
        return self.directory / f"{request_id}.zip"

    async def put(self, request_id: str, data: bytes) -> None:
        await asyncio.to_thread(make_private_dir, self.directory)
        await asyncio.to_thread(write_private, self._path(request_id), data)  # results are the caller's data

    async def get(self, request_id: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._path(request_id).read_bytes)
        except FileNotFoundError:
            return None

    async def sweep(self, older_than: float) -> int:
        return await asyncio.to_thread(self._sweep, older_than)

    def _sweep(self, older_than: float) -> int:
        if not self.directory.exists():
            return 0
        removed = 0
        for path in self.directory.glob("*.zip"):
            if path.stat().st_mtime < older_than:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class S3ResultFiles:
    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

    async def put(self, request_id: str, data: bytes) -> None:
        await self.bucket.put_bytes(f"{PREFIX}{request_id}.zip", data)

    async def get(self, request_id: str) -> bytes | None:
        return await self.bucket.get_bytes(f"{PREFIX}{request_id}.zip")

    async def sweep(self, older_than: float) -> int:
        # Every host sweeps; deleting an object twice is harmless (a bucket lifecycle rule on
        # results/ does the same job for operators who prefer it).
        removed = 0
        for item in await self.bucket.list(PREFIX):
            if item.last_modified < older_than:
                await self.bucket.delete(item.key)
                removed += 1
        return removed
