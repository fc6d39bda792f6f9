"""The worker's outbound queue: items are put as they happen and taken as greedy batches.

Every ``WorkerMessage`` is processed by the gateway in a fixed order — starts, then chunks (in
order), then progress, then gRPC request reads, then gRPC trailers, then ends — so a batch never
holds an item for a request after an item of a later kind for the same request: when that would
happen, the batch is cut there and the item goes into the next message (order is split, never
changed). A batch is also cut at ``max_items`` items or once it carries ``max_bytes`` of chunk
data (the gateway's gRPC receive limit defaults to 4 MiB).

Credits: ``grant(n)`` adds standalone credits (the session's opening grant); ``end(...,
credit=True)`` returns one credit on the very message that carries that end. ``heartbeat()`` and
``set_draining()`` ride on the next message (an otherwise empty one if nothing else is pending).

Putting is synchronous so that items produced in the same event-loop step (a small response's
start, chunk and end) always travel together. Chunk data waiting here counts against a high-water
mark: producers check ``congested`` and ``await wait_space()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = ["MAX_CHUNK", "Outbox"]

_START, _CHUNK, _PROGRESS, _READ, _TRAILERS, _END = 0, 1, 2, 3, 4, 5
# Larger chunk data is split into pieces of this size before it is queued.
MAX_CHUNK = 256 * 1024

# (kind, request_id, a, b, c): the fields of the item by kind (see the producers).
_Item = tuple[int, str, Any, Any, Any]


class Outbox:
    def __init__(
        self, *, max_items: int = 256, max_bytes: int = 1 << 20, high_water: int = 4 << 20, low_water: int = 1 << 20
    ) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.high_water = high_water
        self.low_water = low_water
        self._items: deque[_Item] = deque()
        self._credits = 0
        self._heartbeat = False
        self._draining = False
        self._closed = False
        self._pending_bytes = 0
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    # -- producers -----------------------------------------------------------------------------

    def start(
        self, request_id: str, status: int, headers: Iterable[tuple[str, str]], kind: int = pb.ResultKind.DIRECT
    ) -> None:
        self._put((_START, request_id, status, list(headers), kind))

    def chunk(self, request_id: str, data: bytes) -> None:
        if not data:
            return
        if len(data) <= MAX_CHUNK:
            self._put_chunk(request_id, data)
            return
        view = memoryview(data)
        for offset in range(0, len(data), MAX_CHUNK):
            self._put_chunk(request_id, bytes(view[offset : offset + MAX_CHUNK]))

    def progress(self, request_id: str, percent: int, partial_response: bytes) -> None:
        self._put((_PROGRESS, request_id, percent, partial_response, None))

    def requests_read(self, request_id: str, size: int) -> None:
        """The container read ``size`` more request bytes of a streaming gRPC invocation."""
        self._put((_READ, request_id, size, None, None))

    def trailers(self, request_id: str, code: int, message: str, metadata: Iterable[tuple[str, str]]) -> None:
        """How a gRPC invocation's container call ended (before its end)."""
        self._put((_TRAILERS, request_id, code, message, list(metadata)))

    def end(self, request_id: str, error: str = "", *, credit: bool = True) -> None:
        self._put((_END, request_id, error, credit, None))

    def grant(self, credits: int) -> None:
        if credits > 0:
            self._credits += credits
            self._ready.set()

    def heartbeat(self) -> None:
        self._heartbeat = True
        self._ready.set()

    def set_draining(self) -> None:
        self._draining = True
        self._ready.set()

    def close(self) -> None:
        """No more items; the sender stops once everything pending has been taken."""
        self._closed = True
        self._ready.set()

    @property
    def congested(self) -> bool:
        return self._pending_bytes > self.high_water

    async def wait_space(self) -> None:
        while self._pending_bytes > self.high_water:
            self._space.clear()
            await self._space.wait()

    def _put_chunk(self, request_id: str, data: bytes) -> None:
        self._pending_bytes += len(data)
        self._put((_CHUNK, request_id, data, None, None))

    def _put(self, item: _Item) -> None:
        self._items.append(item)
        self._ready.set()

    # -- the sender ----------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return bool(self._items) or self._credits > 0 or self._heartbeat or self._draining

    @property
    def finished(self) -> bool:
        """Closed and nothing left to send."""
        return self._closed and not self.pending

    async def wait(self) -> None:
        """Wait until something can be taken (or the outbox is closed)."""
        while not self.pending and not self._closed:
            self._ready.clear()
            await self._ready.wait()

    def take(self) -> pb.WorkerMessage | None:
        """The next batch as one message, or None when nothing is pending."""
        if not self.pending:
            return None
        message = pb.WorkerMessage()
        items = self._items
        last_kind: dict[str, int] = {}
        count = 0
        size = 0
        credits = self._credits
        while items and count < self.max_items and size < self.max_bytes:
            kind, request_id, a, b, c = items[0]
            if last_kind.get(request_id, _START) > kind:
                break  # this request already has a later kind in the batch: next message
            items.popleft()
            last_kind[request_id] = kind
            count += 1
            if kind == _CHUNK:
                size += len(a)
                message.chunks.add(request_id=request_id, data=a)
            elif kind == _START:
                start = message.starts.add(request_id=request_id, status=a, kind=c)
                for name, value in b:
                    start.headers.add(key=name, value=value)
            elif kind == _END:
                message.ends.add(request_id=request_id, error=a)
                if b:
                    credits += 1
            else:
                _add_rare(message, kind, request_id, a, b, c)
        if size:
            self._pending_bytes -= size
            if self._pending_bytes <= self.low_water:
                self._space.set()
        message.credits = credits
        self._credits = 0
        if self._heartbeat:
            message.heartbeat = True
            self._heartbeat = False
        if self._draining:
            message.draining = True
            self._draining = False
        return message


def _add_rare(message: pb.WorkerMessage, kind: int, request_id: str, a: Any, b: Any, c: Any) -> None:
    if kind == _PROGRESS:
        message.progress.add(request_id=request_id, percent=a, partial_response=b)
    elif kind == _READ:
        message.grpc_requests_read.add(request_id=request_id, bytes=a)
    else:
        trailers = message.grpc_trailers.add(request_id=request_id, code=a, message=b)
        for name, value in c:
            trailers.metadata.add(key=name, value=value)
