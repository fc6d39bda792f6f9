"""Replies across gateway processes: one Redis Stream per process, demultiplexed by request id.

The process holding a worker relays the answer of an invocation whose client sits in another
process (``RemoteInvocation``) record by record (start, each chunk, progress, end) to that
process's stream ``cfgate:{<process id>}:replies``; the origin applies them to its own
``Invocation``, so the answer loop serves it as if the worker were local. Cancels travel the other
way (the client left: stop it at the worker). When worker and client share a process nothing
goes through Redis.

A Stream rather than pub/sub: the reader resumes from its last id after a reconnect, so a short
outage or a slow reader loses nothing (pub/sub drops whatever is published meanwhile). Sending is
greedy like the worker stream: whatever is ready goes in one pipelined round trip; a failed round
trip is kept and retried (in order) until Redis answers. Records for a process whose presence
key expired are dropped: it is dead, and results for polling are stored instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from invoker.cancelling import raise_if_cancelling
from invoker.presence import Presence

log = logging.getLogger("invoker.replies")

START, CHUNK, PROGRESS, END, CANCEL = b"s", b"c", b"p", b"e", b"x"
# A streaming gRPC invocation was taken (holder → origin), and its further request messages
# (origin → holder, ``status`` 1 when the client half-closed after them).
TAKEN, FRAMES = b"t", b"g"
# The container read ``status`` more of those request bytes (holder → origin).
READ = b"w"
MAXLEN = 100_000
BATCH = 512


def reply_key(process_id: str) -> str:
    return f"cfgate:{{{process_id}}}:replies"


@dataclass(slots=True)
class Reply:
    kind: bytes
    request_id: str
    attempt: int
    sender: str
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    result_kind: int = 0
    data: bytes = b""
    percent: int = 0
    error: str = ""
    # END of a gRPC invocation: (code, message, trailing metadata).
    trailers: tuple[int, str, list[tuple[str, str]]] | None = None


def encode(reply: Reply) -> dict[bytes, bytes]:
    fields = {b"k": reply.kind, b"r": reply.request_id.encode(), b"a": b"%d" % reply.attempt}
    fields[b"f"] = reply.sender.encode()
    if reply.kind == START:
        fields[b"st"] = b"%d" % reply.status
        fields[b"h"] = orjson.dumps(reply.headers)
        fields[b"rk"] = b"%d" % reply.result_kind
    elif reply.kind in (CHUNK, PROGRESS):
        fields[b"d"] = reply.data
        if reply.kind == PROGRESS:
            fields[b"pc"] = b"%d" % reply.percent
    elif reply.kind == FRAMES:
        fields[b"d"] = reply.data
        fields[b"st"] = b"%d" % reply.status
    elif reply.kind == READ:
        fields[b"st"] = b"%d" % reply.status
    if reply.kind in (END, CANCEL) and reply.error:
        fields[b"e"] = reply.error.encode()
    if reply.kind == END and reply.trailers is not None:
        fields[b"gt"] = orjson.dumps(reply.trailers)
    return fields


def decode(fields: dict[bytes, bytes]) -> Reply:
    reply = Reply(fields[b"k"], fields[b"r"].decode(), int(fields[b"a"]), fields[b"f"].decode())
    if reply.kind == START:
        reply.status = int(fields[b"st"])
        reply.headers = [(k, v) for k, v in orjson.loads(fields[b"h"])]
        reply.result_kind = int(fields[b"rk"])
    elif reply.kind in (FRAMES, READ):
        reply.status = int(fields[b"st"])
    elif reply.kind == END and b"gt" in fields:
        code, message, metadata = orjson.loads(fields[b"gt"])
        reply.trailers = (code, message, [(k, v) for k, v in metadata])
    reply.data = fields.get(b"d", b"")
    reply.percent = int(fields.get(b"pc", b"0"))
    reply.error = fields.get(b"e", b"").decode()
    return reply


class ReplyBus:
    def __init__(self, redis: Redis, presence: Presence, *, block_ms: int = 1000) -> None:
        self.redis = redis
        self.presence = presence
        self.key = reply_key(presence.process_id)
        self.block_ms = block_ms
        self.handler: Callable[[Reply], None] = lambda reply: None
        self._outbox: list[tuple[str, Reply]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def process_id(self) -> str:
        return self.presence.process_id

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._flush())]

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Send what is still queued (bounded wait), then stop reading and sending."""
        deadline = asyncio.get_running_loop().time() + flush_timeout
        while self._outbox and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with suppress(RedisError, OSError):
            await self.redis.delete(self.key)

    def send(self, target: str, reply: Reply) -> None:
        self._outbox.append((target, reply))
        self._wake.set()

    async def _flush(self) -> None:
        backoff = 0.05
        while True:
            if not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = self._outbox[:BATCH]
            try:
                targets = sorted({target for target, _ in batch})
                alive = await self.presence.alive_many(targets)
                async with self.redis.pipeline(transaction=False) as pipe:
                    for target, reply in batch:
                        if alive[target]:
                            pipe.xadd(reply_key(target), encode(reply), maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                raise_if_cancelling(exc)
                log.warning("relaying %d reply record(s) failed (%s): retrying", len(batch), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            del self._outbox[: len(batch)]

    async def _read(self) -> None:
        last = b"0-0"
        backoff = 0.05
        while True:
            try:
                found: Any = await self.redis.xread({self.key: last}, count=BATCH, block=self.block_ms)
                backoff = 0.05
            except (RedisError, OSError) as exc:
                raise_if_cancelling(exc)
                log.debug("reply reader: %s; reconnecting", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            for _stream, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id
                    try:
                        self.handler(decode(fields))
                    except Exception:
                        log.exception("bad reply record %r", entry_id)
                with suppress(RedisError, OSError):
                    await self.redis.xtrim(self.key, minid=last, approximate=True)
