"""``InvocationQueue`` on Redis Streams, shared by every gateway process (DESIGN §5).

Per function version ``V`` (keys ``cfgate:{V}:<x>``, one Redis Cluster slot per version):

- ``s`` a Stream with consumer group ``g``: ``XADD … MAXLEN ~`` appends, ``XREADGROUP`` takes
  (only when the dispatcher has a free worker credit: the pump asks only then), ``XACK`` + ``XDEL``
  once the answer is handed back. ``MAXLEN ~`` is a leak guard far above the bound: the bound
  itself is checked exactly inside the enqueue script, so trimming never drops an accepted entry.
- ``h`` the head list: requeued (worker lost) and reclaimed (process lost) requests, served
  before the stream. Their stream ids stay pending under the consumer ``~head``.
- ``w``/``d``/``a``/``m`` hashes by request id: state, payload, attempts, function id + time;
  ``n`` counts requests waiting in the stream, ``l`` is the last stream id delivered.

Plus ``cfgate:rid:<request id>`` → version id, for ``cancel``/``position`` from any process.

Reclaim: every ``reclaim_interval`` each process looks at the consumers of the versions it
serves; a consumer whose presence key (``invoker.presence``) has expired is a dead process, and
its in-flight entries go back to the head (``XPENDING`` of that consumer + ``XCLAIM``) within
seconds. ``XAUTOCLAIM`` is not used: it claims by idle time whoever the owner, and would take a
long-running invocation from a live process.

Costs: enqueue, take, ack, requeue, cancel, depth: one round trip (one command on a standalone
Redis, which lets the scripts write the request index too), O(1) in Redis (take: O(k)
for k taken). ``position`` is O(position) (``XRANGE`` from the last delivered id), fine for the
occasional queue-position call; ``purge`` O(n).

Redis errors become ``BackendUnavailable`` (the gateway answers 503); an ``ack``/``requeue`` that
fails is kept and retried until Redis answers, so no entry is left in flight forever.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import NoScriptError, RedisError, ResponseError

from invoker.cancelling import raise_if_cancelling
from invoker.errors import BackendUnavailable, QueueFull
from invoker.metrics.backend import BACKEND_ERRORS
from invoker.presence import Presence
from invoker.queues import redis_scripts as lua
from invoker.queues.base import DuplicateRequest, QueueEntry, QueuePosition
from invoker.queues.codec import JsonCodec, PayloadCodec
from invoker.queues.redis_batch import ScriptBatcher

log = logging.getLogger("invoker.queues.redis")

T = TypeVar("T")
MAXLEN = 1_000_000
TAKE_BATCH = 64


@functools.lru_cache(maxsize=4096)
def version_keys(version_id: str) -> list[str]:
    """s h w d a m n l, all in the version's hash slot (one list per version: never mutate it)."""
    tag = f"cfgate:{{{version_id}}}:"
    return [tag + k for k in "shwdamnl"]


def wake_channel(version_id: str) -> str:
    return f"cfgate:wake:{{{version_id}}}"


def index_key(request_id: str) -> str:
    return f"cfgate:rid:{request_id}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisQueue:
    remote = True

    def __init__(
        self,
        redis: Redis,
        presence: Presence,
        *,
        codec: PayloadCodec | None = None,
        clock: Callable[[], float] = time.time,
        index_ttl: int = 2 * 3600,
        reclaim_interval: float = 1.0,
        cluster: bool = False,
    ) -> None:
        self.redis = redis
        self.presence = presence
        self.codec: PayloadCodec = codec or JsonCodec()
        self._clock = clock
        self.index_ttl = index_ttl
        self.reclaim_interval = reclaim_interval
        # Standalone Redis: the request index is written by the scripts themselves (one command);
        # Redis Cluster: by a separate command in the same round trip (another slot).
        self.cluster = cluster
        self._scripts = {
            name: redis.register_script(getattr(lua, name))
            for name in ("ENQUEUE", "TAKE", "REQUEUE", "ACK", "CANCEL", "PURGE", "DEPTH", "POSITION", "RECLAIM", "HEAD")
        }
        # Request id → version of the entries taken here, until acked, requeued or cancelled here:
        # bounded by this process's in-flight work. Entries only enqueued here are not kept (another
        # process serves and finishes them unseen): their cancel/position read the request index.
        self._held: dict[str, str] = {}
        self._watched: dict[str, Callable[[], None]] = {}
        # Wake channels our listener is subscribed to (the enqueue script skips wakes only we hear).
        self._subscribed: set[str] = set()
        self._retry: list[tuple[str, str]] = []  # ("ack" | "requeue", request id) that met an outage
        self._suspects: set[tuple[str, str]] = set()  # (version, process) seen dead once
        self._tasks: list[asyncio.Task[None]] = []
        # Concurrent script calls share round trips (standalone Redis; a cluster would need one
        # pipeline per node).
        self.batcher = ScriptBatcher(redis)

    @property
    def me(self) -> str:
        return self.presence.process_id

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._housekeeping()), asyncio.create_task(self._listen())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.batcher.close()

    def watch(self, version_id: str, wake: Callable[[], None]) -> None:
        self._watched[version_id] = wake

    def unwatch(self, version_id: str) -> None:
        self._watched.pop(version_id, None)

    # --- the protocol ---------------------------------------------------------------------

    async def enqueue(
        self, version_id: str, function_id: str, request_id: str, payload: Any, *, limit: int | None = None
    ) -> QueuePosition:
        data = self.codec.encode(payload)
        args: list[Any] = [request_id, function_id, repr(self._clock()), data, -1 if limit is None else limit, MAXLEN]
        channel = wake_channel(version_id)
        args += [channel, self.me, version_id, self.index_ttl]
        # Our own listener's subscription does not count as someone to wake (standalone Redis).
        args.append(-1 if self.cluster else int(channel in self._subscribed))

        async def run() -> tuple[Any, Any]:
            keys = version_keys(version_id)[:7]
            if not self.cluster:
                keys.append(index_key(request_id))
                position = await self._script("ENQUEUE", keys, args)
                return int(position) != -2, position  # a full queue wrote no index
            index = ("SET", index_key(request_id), version_id, "NX", "EX", self.index_ttl)
            fresh, position = await self._with_script(index, "ENQUEUE", keys, args)
            return fresh, position

        fresh, position = await self._call(run)
        position = int(position)
        if position == -2:
            if fresh:
                await self._call(lambda: self.redis.delete(index_key(request_id)))
            raise QueueFull(f"queue of version {version_id} is full")
        if not fresh or position == -1:
            if position > 0:  # the id is known in another version: undo this copy
                await self._call(lambda: self._script("CANCEL", version_keys(version_id), [request_id]))
            raise DuplicateRequest(f"request {request_id} is already queued")
        return QueuePosition(function_id, version_id, position)

    async def take(self, version_id: str) -> QueueEntry | None:
        return next(iter(await self.take_many(version_id, 1)), None)

    async def take_many(self, version_id: str, count: int) -> list[QueueEntry]:
        """Up to ``count`` entries in one round trip (the dispatcher asks for its free credits)."""
        keys = version_keys(version_id)
        flat = await self._call(lambda: self._script("TAKE", keys, [self.me, count]))
        entries = []
        for i in range(0, len(flat), 4):
            rid, meta, attempts, data = _text(flat[i]), _text(flat[i + 1]), int(flat[i + 2]), flat[i + 3]
            function_id, _, enqueued = meta.rpartition("|")
            self._held[rid] = version_id
            payload = self.codec.decode(data)
            entries.append(QueueEntry(rid, function_id, version_id, payload, float(enqueued), attempts))
        return entries

    async def requeue(self, request_id: str) -> bool:
        try:
            return await self._requeue(request_id)
        except BackendUnavailable:
            self._retry.append(("requeue", request_id))
            return True

    async def _requeue(self, request_id: str) -> bool:
        version_id = await self._version_of(request_id)
        if version_id is None:
            return False
        keys = version_keys(version_id)[:3]
        args = [request_id, wake_channel(version_id), self.me]
        done = await self._call(lambda: self._script("REQUEUE", keys, args))
        self._held.pop(request_id, None)  # whoever takes it again holds it now
        if done:
            # Taken again here or elsewhere: the wake (pub/sub and the local kick) says so.
            wake = self._watched.get(version_id)
            if wake is not None:
                wake()
        return bool(done)

    async def ack(self, request_id: str) -> bool:
        try:
            return await self._ack(request_id)
        except BackendUnavailable:
            self._retry.append(("ack", request_id))
            return True

    async def ack_many(self, request_ids: list[str]) -> None:
        """``ack`` of many answered entries at once: on standalone Redis one batched script call
        each, awaited together (``ack`` per entry under ``gather`` cost a task per invocation)."""
        pending: list[tuple[str, asyncio.Future[Any]]] = []
        script = self._scripts["ACK"]
        for request_id in request_ids:
            version_id = self._held.get(request_id)
            if version_id is None or self.cluster:
                pending.append((request_id, asyncio.ensure_future(self.ack(request_id))))
                continue
            s, _h, w, d, a, m, _n, _l = version_keys(version_id)
            keys = [s, w, d, a, m, index_key(request_id)]
            pending.append((request_id, self.batcher.submit(script, keys, [request_id, self.me])))
        for request_id, future in pending:
            try:
                await future
            except ResponseError as exc:  # a script error: retrying would not help
                log.error("ack of %s failed: %r", request_id, exc)
                continue
            except (RedisError, OSError):  # kept for the housekeeping's retry, as ``ack`` does
                self._retry.append(("ack", request_id))
                continue
            self._held.pop(request_id, None)

    async def _ack(self, request_id: str) -> bool:
        version_id = await self._version_of(request_id)
        if version_id is None:
            return False
        s, _h, w, d, a, m, _n, _l = version_keys(version_id)

        async def run() -> Any:
            if not self.cluster:
                return await self._script("ACK", [s, w, d, a, m, index_key(request_id)], [request_id, self.me])
            _, done = await self._with_script(
                ("DEL", index_key(request_id)), "ACK", [s, w, d, a, m], [request_id, self.me]
            )
            if not done:  # not ours to finish (or gone): give the index back to whoever holds it
                await self.redis.set(index_key(request_id), version_id, nx=True, ex=self.index_ttl)
            return done

        done = await self._call(run)
        self._held.pop(request_id, None)
        return bool(done)

    async def cancel(self, request_id: str) -> QueueEntry | None:
        version_id = await self._version_of(request_id)
        if version_id is None:
            return None
        keys = version_keys(version_id)[:7]
        found = await self._call(lambda: self._script("CANCEL", keys, [request_id]))
        self._held.pop(request_id, None)
        if not found:
            return None
        await self._call(lambda: self.redis.delete(index_key(request_id)))
        state, meta, attempts, data = _text(found[0]), _text(found[1]), int(found[2]), found[3]
        holder = state.split("|", 2)[2] if state.startswith("f|") else ""
        return self._entry(request_id, version_id, meta, attempts, data, "" if holder == self.me else holder)

    async def purge(self, version_id: str) -> list[QueueEntry]:
        flat = await self._call(lambda: self._scripts["PURGE"](version_keys(version_id), []))
        dropped = []
        for i in range(0, len(flat), 5):
            rid, meta, attempts, data = _text(flat[i]), _text(flat[i + 2]), int(flat[i + 3]), flat[i + 4]
            dropped.append(self._entry(rid, version_id, meta, attempts, data, ""))
            self._held.pop(rid, None)
        if dropped:
            await self._call(lambda: self.redis.delete(*[index_key(e.request_id) for e in dropped]))
        return dropped

    async def depth(self, version_id: str) -> int:
        keys = version_keys(version_id)
        return int(await self._call(lambda: self._scripts["DEPTH"]([keys[1], keys[6]], [])))

    async def heads(self, version_ids: Iterable[str]) -> dict[str, tuple[int, float | None]]:
        """Per version: how many wait, and the first enqueue time of the next to be served
        (None: nothing waits). Concurrent calls: the batcher makes them one round trip."""
        wanted = sorted(set(version_ids))

        async def one(version_id: str) -> tuple[int, float | None]:
            s, h, _w, _d, _a, m, n, last = version_keys(version_id)
            waiting, meta = await self._call(lambda: self._script("HEAD", [s, h, m, n, last], []))
            enqueued = float(_text(meta).rpartition("|")[2]) if meta else None
            return int(waiting), enqueued

        found = await asyncio.gather(*(one(v) for v in wanted))
        return dict(zip(wanted, found, strict=True))

    async def position(self, request_id: str) -> QueuePosition | None:
        version_id = await self._version_of(request_id)
        if version_id is None:
            return None
        s, h, w, _d, _a, m, _n, last = version_keys(version_id)
        found = await self._call(lambda: self._scripts["POSITION"]([s, h, w, m, last], [request_id]))
        if not found:
            return None
        function_id = _text(found[1]).rpartition("|")[0]
        return QueuePosition(function_id, version_id, int(found[0]))

    # --- helpers --------------------------------------------------------------------------

    def _entry(self, rid: str, version_id: str, meta: str, attempts: int, data: bytes, holder: str) -> QueueEntry:
        function_id, _, enqueued = meta.rpartition("|")
        return QueueEntry(rid, function_id, version_id, self.codec.decode(data), float(enqueued), attempts, holder)

    @property
    def remembered(self) -> int:
        """How many request ids this process keeps a version for: those it holds."""
        return len(self._held)

    async def _version_of(self, request_id: str) -> str | None:
        version_id = self._held.get(request_id)
        if version_id is None:
            raw = await self._call(lambda: self.redis.get(index_key(request_id)))
            version_id = _text(raw) if raw is not None else None
        return version_id

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts[name]
        if self.cluster:
            return await script(keys, args)
        return await self.batcher.call(script, keys, args)

    async def _with_script(
        self, command: tuple[Any, ...], name: str, keys: list[str], args: list[Any]
    ) -> tuple[Any, Any]:
        """One plain command and one script in a single round trip (different hash slots are
        fine: no transaction). A script unknown to the server (Redis restarted) is loaded and rerun."""
        script = self._scripts[name]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.execute_command(*command)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            first, second = await pipe.execute(raise_on_error=False)
        if isinstance(first, Exception) and not isinstance(first, ResponseError):
            raise first
        if isinstance(second, NoScriptError):
            second = await script(keys, args)
        elif isinstance(second, Exception):
            raise second
        return first, second

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except ResponseError:
            raise
        except (RedisError, OSError) as exc:
            BACKEND_ERRORS.redis += 1
            raise BackendUnavailable(f"redis unavailable: {exc}") from exc

    # --- background: reclaim, retries, wakes ----------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            raise_if_cancelling()  # also after a command that swallowed the cancel and returned
            await asyncio.sleep(self.reclaim_interval)
            try:
                await self._retry_pending()
                await self.reclaim()
            except BackendUnavailable as exc:
                raise_if_cancelling(exc)
                log.debug("housekeeping skipped: %s", exc)
            except Exception:
                log.exception("redis queue housekeeping failed")
            for wake in list(self._watched.values()):
                wake()  # a lost pub/sub message, or work left while Redis was away

    async def _retry_pending(self) -> None:
        while self._retry:
            op, rid = self._retry[0]
            await (self._ack(rid) if op == "ack" else self._requeue(rid))
            self._retry.pop(0)

    async def reclaim(self) -> int:
        """Send the in-flight entries of dead processes back to the head of their queues."""
        moved = 0
        for version_id in list(self._watched):
            keys = version_keys(version_id)
            try:
                consumers = await self._call(lambda k=keys[0]: self.redis.xinfo_consumers(k, lua.GROUP))  # type: ignore[misc]
            except ResponseError:
                continue  # no stream or group yet
            names = [_text(c["name"]) for c in consumers if int(c.get("pending", 0)) > 0]
            names = [n for n in names if n != lua.HEAD_CONSUMER and n != self.me]
            if not names:
                continue
            alive = await self._call(lambda n=names: self.presence.alive_many(n))  # type: ignore[misc]
            for name in names:
                suspect = (version_id, name)
                if alive[name]:
                    self._suspects.discard(suspect)
                elif suspect not in self._suspects:
                    # Dead on two looks in a row: a key that lapsed while Redis itself was away
                    # gets one heartbeat to come back before its entries are taken.
                    self._suspects.add(suspect)
                else:
                    self._suspects.discard(suspect)
                    args = [name, wake_channel(version_id), self.me]
                    count = int(await self._call(lambda a=args, k=keys: self._scripts["RECLAIM"](k[:3], a)))  # type: ignore[misc]
                    if count:
                        log.warning("reclaimed %d invocation(s) of lost process %s", count, name)
                        moved += count
                        wake = self._watched.get(version_id)
                        if wake is not None:
                            wake()
        return moved

    async def _listen(self) -> None:
        """Wake the local dispatcher when another process enqueues or requeues a watched version."""
        backoff = 0.1
        while True:
            pubsub: PubSub = self.redis.pubsub(ignore_subscribe_messages=True)
            subscribed: set[str] = set()
            try:
                while True:
                    # A cancel that redis-py swallowed inside (un)subscribe or get_message would
                    # otherwise leave this loop polling forever, and ``stop`` waiting for it (a
                    # 120 s teardown hang, seen once in tests/e2e/test_invoke_scripted.py[redis]).
                    raise_if_cancelling()
                    wanted = {wake_channel(v) for v in self._watched}
                    if wanted - subscribed:
                        await pubsub.subscribe(*(wanted - subscribed))
                    if subscribed - wanted:
                        self._subscribed = set(wanted & subscribed)
                        await pubsub.unsubscribe(*(subscribed - wanted))
                    subscribed = wanted
                    self._subscribed = set(subscribed)
                    if not subscribed:
                        await asyncio.sleep(0.2)
                        continue
                    message = await pubsub.get_message(timeout=0.2)
                    backoff = 0.1
                    if message is None or message.get("type") != "message" or message["data"] == self.me.encode():
                        continue
                    version_id = _text(message["channel"]).split("{", 1)[1].rstrip("}")
                    wake = self._watched.get(version_id)
                    if wake is not None:
                        wake()
            except (RedisError, OSError) as exc:
                raise_if_cancelling(exc)
                log.debug("wake listener: %s; reconnecting", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                self._subscribed = set()
                with suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
