"""The ``nvapi-`` key format: prefix, 43 random url-safe characters, a 21-character check.

The check lets the gateway refuse a mistyped or tampered key without a store lookup. Only the
sha256 of the whole key is stored.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

PREFIX = "nvapi-"
_BODY_LEN = 43
_CHECK_LEN = 21
_SHAPE = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{{_BODY_LEN + _CHECK_LEN}}}$")


def _check(body: str) -> str:
    digest = hashlib.sha256(b"cfgate-apikey-check:" + body.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_CHECK_LEN]


def generate() -> str:
    body = secrets.token_urlsafe(32)[:_BODY_LEN]
    return PREFIX + body + _check(body)


def well_formed(key: str) -> bool:
    if not _SHAPE.match(key):
        return False
    body = key[len(PREFIX) : len(PREFIX) + _BODY_LEN]
    return secrets.compare_digest(key[len(PREFIX) + _BODY_LEN :], _check(body))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
