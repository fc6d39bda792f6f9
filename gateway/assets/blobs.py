"""Where asset bytes live. ``BlobStore`` is the seam; ``LocalBlobStore`` keeps files on disk.

Layout: ``<root>/<ncaId>/<assetId>``, directories 0700 and files 0600. A write goes to a
temporary file in the same directory and is renamed into place only once every byte arrived
(and was flushed to disk), so a broken upload never leaves a partial asset behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from gateway.private_files import make_private_dir

CHUNK = 1 << 20
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class BlobTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Asset exceeds the limit of {limit} bytes")
        self.limit = limit


class BlobStore(Protocol):
    async def write(self, nca_id: str, asset_id: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        """Store the bytes (replacing any previous ones) atomically; their size. ``BlobTooLarge``."""
        ...

    def read(self, nca_id: str, asset_id: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks; ``FileNotFoundError`` if there are none."""
        ...

    async def exists(self, nca_id: str, asset_id: str) -> bool: ...

    async def delete(self, nca_id: str, asset_id: str) -> None: ...

    async def delete_account(self, nca_id: str) -> None: ...


def _segment(name: str) -> str:
    """A directory/file name that cannot escape the root, whatever the account id looks like."""
    if _SAFE_SEGMENT.match(name) and ".." not in name:
        return name
    return "~" + name.encode("utf-8", "surrogatepass").hex()


def _finish(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, nca_id: str, asset_id: str) -> Path:
        return self.root / _segment(nca_id) / _segment(asset_id)

    async def write(self, nca_id: str, asset_id: str, chunks: AsyncIterable[bytes], limit: int) -> int:
        final = self.path(nca_id, asset_id)
        await asyncio.to_thread(make_private_dir, final.parent)
        # mkstemp creates the file 0600 whatever the umask; the rename keeps that mode.
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
        temporary = Path(name)
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
                await asyncio.to_thread(_finish, handle)
            await asyncio.to_thread(os.replace, temporary, final)
        except BaseException:
            _unlink(temporary)
            raise
        return size

    async def read(self, nca_id: str, asset_id: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self.path(nca_id, asset_id), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def exists(self, nca_id: str, asset_id: str) -> bool:
        return await asyncio.to_thread(self.path(nca_id, asset_id).is_file)

    async def delete(self, nca_id: str, asset_id: str) -> None:
        await asyncio.to_thread(_unlink, self.path(nca_id, asset_id))

    async def delete_account(self, nca_id: str) -> None:
        directory = self.root / _segment(nca_id)
        await asyncio.to_thread(shutil.rmtree, directory, True)
