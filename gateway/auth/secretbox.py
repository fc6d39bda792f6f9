"""Encryption at rest for secrets (function, telemetry and registry secrets).

AES-256-GCM with the installation's sealing key (kept in the database, sealed by the master key:
``gateway.auth.installation``) or given as ``CFGATE_SECRET_KEY`` (base64). Values are never logged
and never returned by the API once stored.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.private_files import make_private_dir

KEY_FILE = "secret-key"
_NONCE = 12


class SecretBoxError(Exception):
    """A stored secret cannot be decrypted with the configured key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> str:
        """Encrypt, binding the ciphertext to ``context`` (e.g. ``secret:<versionId>:<name>``)."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open_sealed(self, token: str, context: str) -> str:
        raw = base64.b64decode(token)
        try:
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except InvalidTag as exc:
            raise SecretBoxError(f"cannot decrypt secret for {context.split(':')[0]}") from exc


def create_key_file(path: Path) -> None:
    """Write a fresh key, complete or not at all: processes starting together keep the first one."""
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)))
        try:
            os.link(tmp, path)  # atomic, and fails if another process linked its key first
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
