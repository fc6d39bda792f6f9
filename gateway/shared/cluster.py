"""Wiring one gateway process into the cluster: its caches, credentials and instances, via Redis.

Every local change is published on the invalidation bus; every message from another process
reloads the named item from the store (routing), evicts it (credentials) or re-reads the live
instances. After each (re)subscription everything is reloaded. While the bus is down, credentials
are not cached, so a key deleted anywhere is refused everywhere at once, and the routing cache is
reloaded from the store every ``POLL_SECONDS`` (push degrades to polling, nothing needs Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import redis.asyncio as redis

from gateway.auth.authenticator import Authenticator
from gateway.services.functions.routing import RoutingCache
from gateway.services.functions.secret_delivery import SecretDelivery
from gateway.shared.bus import InvalidationBus
from invoker.instance_redis import RedisInstanceRegistry

FUNCTION, INSTANCES = "function", "instances"
APIKEY, SUBJECT = "apikey", "subject"
SECRETS = "secrets"  # id: a function version whose secrets changed
log = logging.getLogger("gateway.shared")

SUBSCRIBE_WAIT_SECONDS = 2.0
POLL_SECONDS = 2.0


@dataclass(slots=True)
class SharedState:
    client: redis.Redis
    bus: InvalidationBus
    instances: RedisInstanceRegistry
    _poller: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(
        self, routes: RoutingCache, authenticator: Authenticator, secrets: SecretDelivery | None = None
    ) -> None:
        bus, instances, cache = self.bus, self.instances, authenticator.cache

        async def publish_function(function_id: str) -> None:
            await bus.publish(FUNCTION, function_id)

        async def publish_revocation(kind: str, item_id: str) -> None:
            await bus.publish(kind, item_id)

        async def publish_instances(version_id: str) -> None:
            await bus.publish(INSTANCES, version_id)

        async def revoke_key(key_id: str) -> None:
            cache.revoke_key(key_id)

        async def revoke_subject(subject: str) -> None:
            cache.revoke_subject(subject)

        async def resync_instances(_version_id: str) -> None:
            await instances.resync()

        async def forget_credentials() -> None:
            cache.clear()

        routes.listeners.append(publish_function)
        authenticator.listeners.append(publish_revocation)
        authenticator.caching = lambda: bus.connected
        instances.announce = publish_instances
        bus.on(FUNCTION, routes.invalidated)
        bus.on(APIKEY, revoke_key)
        bus.on(SUBJECT, revoke_subject)
        bus.on(INSTANCES, resync_instances)
        # Instances first: their listeners may change function status, which the routes reload sees.
        bus.on_reload(instances.resync)
        bus.on_reload(routes.load_all)
        bus.on_reload(forget_credentials)
        if secrets is not None:

            async def publish_secrets(version_id: str) -> None:
                await bus.publish(SECRETS, version_id)

            secrets.listeners.append(publish_secrets)
            bus.on(SECRETS, secrets.deliver)
            bus.on_reload(secrets.deliver_all)
        bus.on_disconnect(forget_credentials)
        bus.start()
        instances.start()
        self._poller = asyncio.create_task(self._poll_while_down(routes), name="routing-poll")
        await bus.wait_connected(SUBSCRIBE_WAIT_SECONDS)

    async def _poll_while_down(self, routes: RoutingCache) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.bus.connected:
                try:
                    await routes.load_all()
                except Exception:
                    log.exception("reloading the routing cache failed")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.bus.close()
        await self.instances.close()
        await self.client.aclose()
