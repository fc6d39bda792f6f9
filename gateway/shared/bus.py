"""Cache invalidation across gateway processes: ``{kind, id}`` messages on one Redis channel.

A process that changed something publishes what changed (``function``, ``apikey``, ...) and its
id; every other process reloads that id from the store itself, so no state travels through Redis
and a message can be lost without leaving a wrong value behind for long: pub/sub delivers at most
once, and a subscriber that was disconnected may have missed any number of messages, so after every
(re)subscription each registered ``reload`` runs (full reload from the store).

While the subscription is down ``connected`` is false; callers that must never serve a stale
value (credentials) stop caching until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from invoker.cancelling import raise_if_cancelling

log = logging.getLogger("gateway.shared.bus")

CHANNEL = b"cfgate:invalidate"
BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 1.0

Handler = Callable[[str], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


class InvalidationBus:
    def __init__(self, client: redis.Redis, origin: str, channel: bytes = CHANNEL) -> None:
        self._client = client
        self._origin = origin
        self._channel = channel
        self._handlers: dict[str, Handler] = {}
        self._reloads: list[Hook] = []
        self._on_disconnect: list[Hook] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closed = False

    @property
    def connected(self) -> bool:
        """Subscribed and caught up: every change published from here on will reach this process."""
        return self._connected.is_set()

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(id)`` when another process publishes ``kind``."""
        self._handlers[kind] = handler

    def on_reload(self, hook: Hook) -> None:
        """Run after every (re)subscription: reload everything, messages may have been missed."""
        self._reloads.append(hook)

    def on_disconnect(self, hook: Hook) -> None:
        self._on_disconnect.append(hook)

    async def publish(self, kind: str, item_id: str) -> bool:
        """Tell the other processes; False if Redis is unreachable (they reload when they reconnect)."""
        message = orjson.dumps({"kind": kind, "id": item_id, "origin": self._origin})
        try:
            await self._client.publish(self._channel, message)
        except RedisError as exc:
            log.warning("invalidation of %s %s not published: %s", kind, item_id, exc)
            return False
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="invalidation-bus")

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self.connected

    async def close(self) -> None:
        # A flag as well as the cancel: redis-py may swallow a cancellation that hits a read.
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = BACKOFF_FIRST_SECONDS
        while not self._closed:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                raise_if_cancelling(exc)
                if self.connected:
                    log.warning("invalidation bus lost Redis (%s): reconnecting", exc)
                    self._connected.clear()
                    await self._run_hooks(self._on_disconnect)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
            else:
                backoff = BACKOFF_FIRST_SECONDS

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            # Subscribed: nothing published from now on is missed; catch up with what was before.
            await self._run_hooks(self._reloads)
            if not self.connected:
                log.info("invalidation bus subscribed")
            self._connected.set()
            while not self._closed:
                message = await pubsub.get_message(timeout=READ_TIMEOUT_SECONDS)
                if message is not None:
                    await self._deliver(message)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def _deliver(self, message: dict[str, Any]) -> None:
        try:
            event = orjson.loads(message["data"])
            kind, item_id, origin = event["kind"], event["id"], event.get("origin")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring malformed invalidation message")
            return
        if origin == self._origin:
            return
        handler = self._handlers.get(kind)
        if handler is None:
            return
        try:
            await handler(item_id)
        except Exception:
            log.exception("invalidation of %s %s failed", kind, item_id)

    async def _run_hooks(self, hooks: list[Hook]) -> None:
        for hook in hooks:
            try:
                await hook()
            except (RedisError, OSError):
                raise
            except Exception:
                log.exception("invalidation bus hook failed")
