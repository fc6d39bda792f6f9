"""Function secrets on their way to the container: opened from the store for a worker's
``Register``, pushed to connected workers when ``PUT /v2/nvcf/secrets/...`` changes them.

The document is NVCF's ``/var/secrets/secrets.json``: one flat JSON object ``{name: value}`` (a
JSON-object value as its JSON text, as it is stored). Values live in memory only as long as one
delivery takes and are never logged.

A change is delivered here at once and announced to the other gateway processes (``listeners``:
the invalidation bus), each of which re-reads the store and pushes to its own workers; after a
resubscription (messages may have been missed) every connected version is delivered again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from gateway.auth.secretbox import SecretBox
from gateway.store.functions import FunctionRepository

__all__ = ["SecretDelivery"]

log = logging.getLogger("gateway.secrets")

Listener = Callable[[str], Awaitable[None]]
Push = Callable[[str, bytes], int]


class SecretDelivery:
    def __init__(self, functions: FunctionRepository, box: SecretBox) -> None:
        self._functions = functions
        self._box = box
        self.listeners: list[Listener] = []
        # Set by the worker endpoint: push to the sessions of a version, list connected versions.
        self.push: Push | None = None
        self.connected_versions: Callable[[], set[str]] = set

    async def document(self, version_id: str) -> bytes:
        """The version's secrets file contents (``{}`` when it has none)."""
        sealed = await self._functions.sealed_secrets(version_id)
        opened = {name: self._box.open_sealed(c, f"secret:{version_id}:{name}") for name, c in sealed}
        return orjson.dumps(opened, option=orjson.OPT_SORT_KEYS)

    async def changed(self, version_id: str) -> None:
        """The version's secrets were written here: deliver, then tell the other processes."""
        await self.deliver(version_id)
        for listener in self.listeners:
            try:
                await listener(version_id)
            except Exception:
                log.exception("announcing new secrets of version %s failed", version_id)

    async def deliver(self, version_id: str) -> None:
        """Push the version's current secrets to its workers connected to this process."""
        if self.push is None or version_id not in self.connected_versions():
            return
        count = self.push(version_id, await self.document(version_id))
        log.info("secrets of version %s pushed to %d worker(s)", version_id, count)

    async def deliver_all(self) -> None:
        for version_id in sorted(self.connected_versions()):
            await self.deliver(version_id)
