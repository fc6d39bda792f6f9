"""cfgate's own token-signing keys: ES256, each with a ``kid``, persisted in the data directory.

Rotation adds a new key and makes it the signer; older keys stay in the ring (and in the JWKS)
until every token they signed has expired, so rotating never invalidates a live token.

A ``kid`` the ring does not hold may be a key another process rotated in, so ``lookup`` reloads
the file, but never per request: anyone can send a token naming any ``kid``. Reloads run in a
thread, at most one per ``RELOAD_INTERVAL`` (requests arriving meanwhile wait for the next one
rather than being refused, so a freshly rotated key is still accepted), re-parse the file only
when it changed, and a ``kid`` still missing afterwards is remembered as unknown for a while.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.private_files import make_private_dir, open_private

log = logging.getLogger("gateway.auth.keyring")

KEYRING_FILE = "signing-keys.json"
LOCK_FILE = "signing-keys.lock"
ALGORITHM = "ES256"
# At most one reload of the key file per interval; unknown kids are remembered this long.
RELOAD_INTERVAL = 1.0
UNKNOWN_KID_TTL = 30.0
MAX_UNKNOWN_KIDS = 4096

FileStamp = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created_at: float
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, alg=ALGORITHM, use="sig")
        return jwk


class KeyRing:
    """Signing keys, newest first. Reloaded from disk when a token names an unknown ``kid``."""

    def __init__(self, path: Path, retain_seconds: float) -> None:
        self._path = path
        self._retain_seconds = retain_seconds
        self._keys: list[SigningKey] = []
        self._stamp: FileStamp | None = None
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> monotonic expiry
        self._last_reload = float("-inf")
        self._pending: asyncio.Future[None] | None = None
        self.reloads = 0  # file parses (a statistic for tests and operators)

    @classmethod
    def open(cls, data_dir: Path, retain_seconds: float) -> KeyRing:
        ring = cls(data_dir / KEYRING_FILE, retain_seconds)
        ring.reload()
        if not ring._keys:
            # Processes starting together on one data directory must agree on the first key.
            make_private_dir(data_dir)
            with os.fdopen(open_private(data_dir / LOCK_FILE, os.O_RDWR), "r+b") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                ring.reload()
                if not ring._keys:
                    ring.rotate()
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
        """The key named ``kid``, reloading the file (rate-limited, off the loop) if it is new."""
        key = self.get(kid)
        if key is not None:
            return key
        now = time.monotonic()
        expiry = self._unknown.get(kid)
        if expiry is not None and expiry > now:
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
        """Join the pending reload, or start one no sooner than RELOAD_INTERVAL after the last."""
        pending = self._pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            self._pending = pending = asyncio.ensure_future(self._reload_later())
        await asyncio.shield(pending)

    async def _reload_later(self) -> None:
        try:
            wait = self._last_reload + RELOAD_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            before = self.reloads
            try:
                await asyncio.to_thread(self._reload_if_changed)
                if self.reloads != before:
                    self._unknown.clear()
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a half-written or broken file
                log.warning("signing keys not reloaded from %s: %s", self._path, type(exc).__name__)
        finally:
            self._last_reload = time.monotonic()
            self._pending = None

    def _reload_if_changed(self) -> None:
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return
        if (info.st_ino, info.st_mtime_ns, info.st_size) != self._stamp:
            self.reload()

    def reload(self) -> None:
        try:
            info = os.stat(self._path)
        except FileNotFoundError:
            return
        raw = json.loads(self._path.read_text())
        self.reloads += 1
        keys = []
        for entry in raw.get("keys", []):
            private = serialization.load_pem_private_key(entry["pem"].encode(), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self._path}: key {entry['kid']} is not an EC key")
            keys.append(SigningKey(entry["kid"], float(entry["created_at"]), private))
        keys.sort(key=lambda k: k.created_at, reverse=True)
        self._keys = keys
        self._stamp = (info.st_ino, info.st_mtime_ns, info.st_size)

    def rotate(self) -> SigningKey:
        """Add a fresh key as the signer and drop keys whose tokens have all expired."""
        self.reload()
        now = time.time()
        key = SigningKey(f"cfgate-{secrets.token_hex(8)}", now, ec.generate_private_key(ec.SECP256R1()))
        keep = [key]
        # A retired key may still have signed a live token until retain_seconds after the next
        # key replaced it; keys[i-1] replaced keys[i].
        newer_created = now
        for old in self._keys:
            if now - newer_created < self._retain_seconds:
                keep.append(old)
            newer_created = old.created_at
        self._keys = keep
        self._save()
        log.info("signing key rotated: new kid %s, %d key(s) published", key.kid, len(keep))
        return key

    def _save(self) -> None:
        make_private_dir(self._path.parent)
        payload = {
            "keys": [
                {
                    "kid": k.kid,
                    "created_at": k.created_at,
                    "pem": k.private_key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ).decode(),
                }
                for k in self._keys
            ]
        }
        tmp = self._path.with_suffix(".tmp")
        with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, self._path)
        info = os.stat(self._path)
        self._stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
