"""The ``nvcc-`` cluster credential: what SIS hands out once per registered cluster.

Workers of the cluster present it on gRPC ``Register``. Only its sha256 is stored (as API keys),
so a lost credential cannot be shown again: the cluster is deleted and registered anew.
"""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "nvcc-"
_SHAPE = re.compile(rf"^{PREFIX}[A-Za-z0-9_-]{{43}}$")


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 32 random bytes → 43 url-safe characters


def looks_like(credential: str) -> bool:
    """True for anything shaped like a cluster credential (it may still be unknown or revoked)."""
    return credential.startswith(PREFIX)


def well_formed(credential: str) -> bool:
    return _SHAPE.match(credential) is not None


def credential_hash(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()
