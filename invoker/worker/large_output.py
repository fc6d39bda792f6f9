"""Large results (compat mode): a zip of ``<reqId>.response`` plus the large-output files.

A compat-mode answer becomes a large result when its body is larger than
``max_direct_response_bytes`` or when the container left any file other than ``progress`` (at any
depth) in its ``NVCF-LARGE-OUTPUT-DIR`` (reference §9.4, ``WU/large.go``). The zip holds
``<reqId>.response`` (the body) and every such file under its path relative to that directory.

The zip is spooled to an anonymous temporary file while the body is still arriving: the part of the
body already read is written first and dropped, then the rest streams in, so the body is never
held in memory twice. Zip writes (deflate, level 1) run in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

__all__ = ["LargeResult", "build_large_result", "scan_artifacts"]

_THREAD_BATCH = 1 << 20  # hand body data to the zip thread in pieces of about this size


def scan_artifacts(directory: str) -> list[str]:
    """Paths (relative to ``directory``) of the files a large result must include, sorted."""
    try:
        with os.scandir(directory) as entries:
            if next(entries, None) is None:
                return []  # the common case: nothing written
    except OSError:
        return []
    found: list[str] = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if name != "progress":
                found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found)


@dataclass
class LargeResult:
    file: IO[bytes]
    size: int

    def close(self) -> None:
        self.file.close()


def _open(spool_dir: str | None, request_id: str) -> tuple[IO[bytes], zipfile.ZipFile, IO[bytes]]:
    spool = tempfile.TemporaryFile(dir=spool_dir, prefix="large-")
    archive = zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    entry = archive.open(f"{request_id}.response", "w", force_zip64=True)
    return spool, archive, entry


def _write(entry: IO[bytes], parts: list[bytes]) -> None:
    for part in parts:
        entry.write(part)


def _finish(spool: IO[bytes], archive: zipfile.ZipFile, entry: IO[bytes], directory: str) -> int:
    entry.close()
    for relative in scan_artifacts(directory):
        archive.write(os.path.join(directory, relative), arcname=relative)
    archive.close()
    size = spool.tell()
    spool.seek(0)
    return size


async def build_large_result(
    request_id: str,
    head: list[bytes],
    rest: AsyncIterator[bytes] | None,
    directory: str,
    spool_dir: str | None = None,
) -> LargeResult:
    """Zip ``head`` + the rest of the body + the files in ``directory``; ``head`` is emptied on the way."""
    spool, archive, entry = await asyncio.to_thread(_open, spool_dir, request_id)
    try:
        parts = head[:]
        head.clear()
        await asyncio.to_thread(_write, entry, parts)
        parts.clear()
        if rest is not None:
            batch: list[bytes] = []
            size = 0
            async for chunk in rest:
                batch.append(chunk)
                size += len(chunk)
                if size >= _THREAD_BATCH:
                    await asyncio.to_thread(_write, entry, batch)
                    batch, size = [], 0
            if batch:
                await asyncio.to_thread(_write, entry, batch)
        total = await asyncio.to_thread(_finish, spool, archive, entry, directory)
    except BaseException:
        spool.close()
        raise
    return LargeResult(spool, total)
