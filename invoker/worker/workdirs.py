"""Per-invocation directories under the work dir: ``inputAssets/<reqId>`` and ``response/<reqId>``.

Every invocation gets ``response/<reqId>`` (its NVCF-LARGE-OUTPUT-DIR; none when the worker runs
``--no-large-outputs``) and, when it has input assets, ``inputAssets/<reqId>``; both are gone once
it ends. Both are made writable by anyone (0777, as NVCF does), since the container may run as
another user.

Creating and removing a directory costs 0.1–0.7 ms of kernel time on ordinary disk filesystems
(measured on ext4), more than the rest of an invocation. So a response directory that is still
empty when its invocation ends is renamed to a spare name (``response/.spare-<n>``) and renamed
into place for a later invocation (a rename pair costs ~20 µs). A renamed directory is no longer
reachable under its old request's name, so a late write by path fails instead of leaking into the
next invocation. Directories holding files are removed. A caller that has just seen the directory
empty says so (``release_output_dir(path, empty=True)``): listing it again would cost another
open/fstat/getdents/close (~4 µs) per invocation.

The work dir belongs to one worker process: what an earlier process left under ``inputAssets/``
and ``response/`` is removed at start.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil

__all__ = ["WorkDirs", "is_empty", "remove_tree"]

_MODE = 0o777


def is_empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def remove_tree(path: str) -> None:
    """Remove a directory (empty or not) or a file; never raises."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        with contextlib.suppress(OSError):
            os.unlink(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _make(path: str) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    os.chmod(path, _MODE)


class WorkDirs:
    def __init__(self, root: str, *, spares: int = 64) -> None:
        self.root = root
        self.asset_root = os.path.join(root, "inputAssets")
        self.output_root = os.path.join(root, "response")
        self.spares = spares
        self._spare: list[str] = []
        self._names = itertools.count()
        for path in (self.asset_root, self.output_root):
            os.makedirs(path, exist_ok=True)
            # Left over by an earlier process that did not exit cleanly (the work dir is this worker's).
            for entry in os.listdir(path):
                remove_tree(os.path.join(path, entry))

    def asset_dir(self, request_id: str) -> str:
        return os.path.join(self.asset_root, request_id)

    def make_asset_dir(self, request_id: str) -> str:
        path = self.asset_dir(request_id)
        _make(path)
        return path

    def output_dir(self, request_id: str) -> str:
        """Create ``response/<request_id>`` (empty) and return its path."""
        target = f"{self.output_root}/{request_id}"
        while self._spare:
            spare = self._spare.pop()
            try:
                os.rename(spare, target)
                return target
            except OSError:
                remove_tree(spare)
        _make(target)
        return target

    def release_output_dir(self, path: str, *, empty: bool | None = None) -> None:
        """Done with an output directory: keep it as a spare when empty, else remove it.

        ``empty``: what the caller saw when it last listed the directory with nothing awaited since
        (None: not listed, look now).
        """
        if empty is None:
            empty = is_empty(path)
        if empty and len(self._spare) < self.spares:
            spare = f"{self.output_root}/.spare-{next(self._names)}"
            try:
                os.rename(path, spare)
            except OSError:
                remove_tree(path)
            else:
                self._spare.append(spare)
            return
        remove_tree(path)

    def close(self) -> None:
        while self._spare:
            remove_tree(self._spare.pop())
