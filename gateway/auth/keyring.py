"""cfgate's own token-signing keys: ES256, each with a ``kid``, persisted in the data directory.

Rotation adds a new key and makes it the signer; older keys stay in the ring (and in the JWKS)
until every token they signed has expired, so rotating never invalidates a live token.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

log = logging.getLogger("gateway.auth.keyring")

KEYRING_FILE = "signing-keys.json"
LOCK_FILE = "signing-keys.lock"
ALGORITHM = "ES256"


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

    @classmethod
    def open(cls, data_dir: Path, retain_seconds: float) -> KeyRing:
        ring = cls(data_dir / KEYRING_FILE, retain_seconds)
        ring.reload()
        if not ring._keys:
            # Processes starting together on one data directory must agree on the first key.
            data_dir.mkdir(parents=True, exist_ok=True)
            with open(data_dir / LOCK_FILE, "a+b") as lock:
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

    def reload(self) -> None:
        if not self._path.exists():
            return
        raw = json.loads(self._path.read_text())
        keys = []
        for entry in raw.get("keys", []):
            private = serialization.load_pem_private_key(entry["pem"].encode(), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self._path}: key {entry['kid']} is not an EC key")
            keys.append(SigningKey(entry["kid"], float(entry["created_at"]), private))
        keys.sort(key=lambda k: k.created_at, reverse=True)
        self._keys = keys

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
        self._path.parent.mkdir(parents=True, exist_ok=True)
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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, self._path)
