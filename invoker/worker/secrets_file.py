"""The function's secrets as its container reads them: one flat JSON file (NVCF's
``/var/secrets/secrets.json``), written by the worker at each registration and rewritten whenever
the gateway pushes new secrets.

The file is replaced atomically (a 0600 temporary file in the same directory, fsynced, then
renamed over the old one), so a container reading it at any moment sees the old document or the
new one, never a part. A missing directory is created 0700. The contents are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path

__all__ = ["SecretsFile"]

log = logging.getLogger("invoker.worker.secrets")

FILE_MODE = 0o600
DIR_MODE = 0o700


class SecretsFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._written: bytes | None = None
        self._warned = False

    def write(self, document: bytes) -> bool:
        """Deliver ``document`` (a JSON object); True when the file changed. Without a configured
        path, a version that has secrets is reported once (by count only) and nothing is written."""
        document = document or b"{}"
        if self.path is None:
            if document != b"{}" and not self._warned:
                self._warned = True
                log.warning("this version has secrets but the worker has no --secrets-file: they are not delivered")
            return False
        if document == self._written:
            return False
        _replace(self.path, document)
        self._written = document
        log.info("secrets file %s updated", self.path)
        return True


def _replace(path: Path, data: bytes) -> None:
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp's 0600 already; explicit, whatever the platform
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
