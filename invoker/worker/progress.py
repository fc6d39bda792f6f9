"""Progress files: ``<large-output-dir>/progress`` written by the container in compat mode.

The container writes ``{"id": "<reqId>", "progress": <0-100>, "partialResponse": {...}}``
(reference §9.4, ``WU/progress/progress.go``). One poller task serves every watched request:
every ``interval`` seconds it stats each watched file, and a file whose (mtime, size, inode)
changed is read and parsed. A file that does not parse (caught mid-write) is read again at the next
poll; a parsed one is reported once per write.

Choices: a file naming another request (``id`` present and different) is ignored, as NVCF does;
a file without ``id`` is accepted. ``progress`` is clamped to 0..100 (not a number: 0).
``partialResponse`` is passed on as compact JSON; when it is absent or null the partial response
is empty (the gateway then answers 202 with no body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressWatcher", "parse_progress"]

log = logging.getLogger("invoker.worker.progress")

# Called with (percent, partial_response JSON bytes).
ProgressCallback = Callable[[int, bytes], None]


def parse_progress(data: bytes, request_id: str) -> tuple[int, bytes] | None:
    """(percent, partial response) from a progress file's bytes; None when it names another request.

    Raises ValueError when the bytes are not a JSON object (a file caught mid-write).
    """
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError("the progress file is not a JSON object")
    named = document.get("id")
    if named not in (None, "") and named != request_id:
        return None
    raw = document.get("progress")
    percent = int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0
    partial = document.get("partialResponse")
    body = b"" if partial is None else json.dumps(partial, separators=(",", ":")).encode()
    return max(0, min(100, percent)), body


@dataclass
class _Watch:
    request_id: str
    path: str
    callback: ProgressCallback
    seen: tuple[int, int, int] | None = None


class ProgressWatcher:
    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._watches: dict[str, _Watch] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, request_id: str, directory: str, callback: ProgressCallback) -> None:
        self._watches[request_id] = _Watch(request_id, os.path.join(directory, "progress"), callback)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="progress-watcher")

    def unwatch(self, request_id: str) -> None:
        self._watches.pop(request_id, None)

    async def close(self) -> None:
        self._watches.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while self._watches:
            await asyncio.sleep(self.interval)
            for watch in list(self._watches.values()):
                self.poll(watch)

    def poll(self, watch: _Watch) -> None:
        try:
            stat = os.stat(watch.path)
        except OSError:
            return
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature == watch.seen:
            return
        try:
            with open(watch.path, "rb") as file:
                data = file.read()
        except OSError:
            return
        try:
            parsed = parse_progress(data, watch.request_id)
        except ValueError:
            return  # caught mid-write: read it again at the next poll
        watch.seen = signature
        if parsed is not None and self._watches.get(watch.request_id) is watch:
            try:
                watch.callback(*parsed)
            except Exception:
                log.exception("progress callback failed for %s", watch.request_id)
