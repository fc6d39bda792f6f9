"""Wiring one gateway process into the cluster: its caches, credentials and instances, via Redis.

Every local change is published on the invalidation bus; every message from another process
reloads the named item from the store (routing), evicts it (credentials) or re-reads the live
instances. After each (re)subscription everything is reloaded; while the bus is down credentials
are not cached, so a key deleted anywhere is refused everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis

from gateway.auth.authenticator import Authenticator
from gateway.services.functions.routing import RoutingCache
from gateway.shared.bus import InvalidationBus
from invoker.instance_redis import RedisInstanceRegistry

FUNCTION, INSTANCES = "function", "instances"
APIKEY, SUBJECT = "apikey", "subject"
SUBSCRIBE_WAIT_SECONDS = 2.0


@dataclass(slots=True)
class SharedState:
    client: redis.Redis
    bus: InvalidationBus
    instances: RedisInstanceRegistry

    async def start(self, routes: RoutingCache, authenticator: Authenticator) -> None:
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
        bus.on_disconnect(forget_credentials)
        bus.start()
        instances.start()
        await bus.wait_connected(SUBSCRIBE_WAIT_SECONDS)

    async def close(self) -> None:
        await self.bus.close()
        await self.instances.close()
        await self.client.aclose()
