"""cfgate's own token-signing keys: ES256, each with a ``kid``, kept by a ``KeySource``.

Rotation adds a new key and makes it the signer; older keys stay in the ring (and in the JWKS)
until every token they signed has expired, so rotating never invalidates a live token.

Where the keys live is the source's business: ``DatabaseKeySource`` (the installation's store,
sealed by its master key: every gateway of an installation, on any host, shares them) or
``FileKeySource`` (a JSON file, mode 0600: the data directory's keys of earlier versions, read
once to import them). The ring keeps the keys in memory; ``refresh`` re-reads the source.

A ``kid`` the ring does not hold may be a key another process or host rotated in, so ``lookup``
refreshes, but never per request: anyone can send a token naming any ``kid``. At most one
refresh runs per ``RELOAD_INTERVAL`` (requests arriving meanwhile join it, or wait for the next
one rather than being refused, so a freshly rotated key is still accepted), and a ``kid`` still
missing afterwards is remembered as unknown for ``UNKNOWN_KID_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.private_files import make_private_dir, open_private

log = logging.getLogger("gateway.auth.keyring")

KEYRING_FILE = "signing-keys.json"
LOCK_FILE = "signing-keys.lock"
ALGORITHM = "ES256"
# At most one refresh for unknown kids per interval; unknown kids are remembered this long.
RELOAD_INTERVAL = 1.0
UNKNOWN_KID_TTL = 30.0
MAX_UNKNOWN_KIDS = 4096


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created_at: float
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(f"cfgate-{secrets.token_hex(8)}", time.time(), ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, kid: str, created_at: float, pem: str) -> SigningKey:
        private = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError(f"signing key {kid} is not an EC key")
        return cls(kid, created_at, private)

    def pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return jwk


class KeySource(Protocol):
    """Where the ring's keys are kept. ``add`` of a kid already there is a no-op; ``add_first``
    adds only to a source without keys, atomically (processes starting together agree on one)."""

    async def load(self) -> list[SigningKey]: ...

    async def add(self, key: SigningKey) -> None: ...

    async def add_first(self, key: SigningKey) -> None: ...

    async def drop(self, kids: Collection[str]) -> None: ...


class KeyRing:
    """Signing keys, newest first, as last read from the source."""

    def __init__(self, source: KeySource, retain_seconds: float) -> None:
        self.source = source
        self._retain_seconds = retain_seconds
        self._keys: list[SigningKey] = []
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> monotonic expiry
        self._last_reload = float("-inf")
        self._pending: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, source: KeySource, retain_seconds: float) -> KeyRing:
        """The ring of ``source``, with a first key if it has none."""
        ring = cls(source, retain_seconds)
        await ring.refresh()
        if not ring._keys:
            await source.add_first(SigningKey.generate())
            await ring.refresh()
        return ring

    @property
    def active(self) -> SigningKey:
        return self._keys[0]

    def get(self, kid: str) -> SigningKey | None:
        for key in self._keys:
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self._keys]}

    async def lookup(self, kid: str) -> SigningKey | None:
        """The key named ``kid``, refreshing from the source (rate-limited) if it is new."""
        key = self.get(kid)
        if key is not None:
            return key
        expiry = self._unknown.get(kid)
        if expiry is not None and expiry > time.monotonic():
            return None
        await self._reload_soon()
        key = self.get(kid)
        if key is None:
            self._unknown[kid] = time.monotonic() + UNKNOWN_KID_TTL
            self._unknown.move_to_end(kid)
            while len(self._unknown) > MAX_UNKNOWN_KIDS:
                self._unknown.popitem(last=False)
        return key

    async def _reload_soon(self) -> None:
        """Join the pending refresh, or start one no sooner than RELOAD_INTERVAL after the last."""
        pending = self._pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            self._pending = pending = asyncio.ensure_future(self._reload_later())
        await asyncio.shield(pending)

    async def _reload_later(self) -> None:
        try:
            wait = self._last_reload + RELOAD_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.refresh()
            except Exception as exc:  # the source is unreachable or holds a broken key: keep the ring
                log.warning("signing keys not refreshed from the source: %s", type(exc).__name__)
        finally:
            self._last_reload = time.monotonic()
            self._pending = None

    async def refresh(self) -> None:
        keys = await self.source.load()
        if keys:
            before = {k.kid for k in self._keys}
            self._keys = sorted(keys, key=lambda k: k.created_at, reverse=True)
            if {k.kid for k in self._keys} != before:
                self._unknown.clear()

    async def rotate(self) -> SigningKey:
        """Add a fresh key as the signer and drop keys whose tokens have all expired."""
        await self.refresh()
        key = SigningKey.generate()
        # A retired key may still have signed a live token until retain_seconds after the next
        # key replaced it; keys[i-1] replaced keys[i].
        expired, newer_created = [], key.created_at
        for old in self._keys:
            if key.created_at - newer_created >= self._retain_seconds:
                expired.append(old.kid)
            newer_created = old.created_at
        await self.source.add(key)
        await self.source.drop(expired)
        await self.refresh()
        log.info("signing key rotated: new kid %s, %d key(s) published", key.kid, len(self._keys))
        return key


class FileKeySource:
    """A JSON file of PEM keys (mode 0600), changed under an exclusive lock beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> FileKeySource:
        return cls(data_dir / KEYRING_FILE)

    async def load(self) -> list[SigningKey]:
        return await asyncio.to_thread(self._read)

    async def add(self, key: SigningKey) -> None:
        def added(keys: list[SigningKey]) -> list[SigningKey]:
            return keys if any(k.kid == key.kid for k in keys) else [*keys, key]

        await asyncio.to_thread(self._change, added)

    async def add_first(self, key: SigningKey) -> None:
        await asyncio.to_thread(self._change, lambda keys: keys or [key])

    async def drop(self, kids: Collection[str]) -> None:
        if kids:
            await asyncio.to_thread(self._change, lambda keys: [k for k in keys if k.kid not in kids])

    def _read(self) -> list[SigningKey]:
        if not self.path.exists():
            return []
        raw = json.loads(self.path.read_text())
        return [SigningKey.from_pem(e["kid"], float(e["created_at"]), e["pem"]) for e in raw.get("keys", [])]

    def _change(self, change: Callable[[list[SigningKey]], list[SigningKey]]) -> None:
        make_private_dir(self.path.parent)
        with os.fdopen(open_private(self.path.with_name(LOCK_FILE), os.O_RDWR), "r+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            keys = change(self._read())
            payload = {"keys": [{"kid": k.kid, "created_at": k.created_at, "pem": k.pem()} for k in keys]}
            tmp = self.path.with_suffix(".tmp")
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w") as handle:
                json.dump(payload, handle)
            os.replace(tmp, self.path)
