"""Files and directories only the gateway's user may read: 0600 files, 0700 directories.

Everything the gateway writes under its data directory (the database, large results, assets,
keys) is created with these modes explicitly, whatever the process umask: a umask of 022 (the
usual default) would otherwise leave the store and results world-readable.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "make_private_dir", "open_private", "restrict", "write_private"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dir(path: Path) -> None:
    """``mkdir -p`` where every directory created is 0700 (existing ones are left as they are)."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)
        # mkdir's mode is masked by the umask; chmod is not.
        os.chmod(directory, DIR_MODE)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with 0600 for a new file, and 0600 enforced on an existing one."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write (truncate) ``path`` as a 0600 file."""
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_TRUNC), "wb") as handle:
        handle.write(data)


def restrict(path: Path) -> None:
    """Make an existing file 0600 (files created by a library, e.g. SQLite's -wal and -shm)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, FILE_MODE)
