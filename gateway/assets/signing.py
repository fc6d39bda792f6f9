"""HMAC-SHA256 signatures for the pre-signed asset URLs.

The key is derived (HKDF) from the gateway's secret-key material, the same material the secret
box uses (``CFGATE_SECRET_KEY`` or ``<data_dir>/secret-key``), so every node of a cluster that
shares that key accepts the URLs any node hands out. The admin signing keys are never used.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"cfgate asset url signing v1"
# An epoch second has 10 digits until 2286; more is not an expiry anyone signed.
_MAX_EXPIRY_DIGITS = 12


def parse_expiry(text: str | None) -> int | None:
    """The ``expires=`` of a signed URL as epoch seconds; None unless it is 1-12 ASCII digits.

    ``str.isdigit`` alone is not enough: it accepts digits like "²" that ``int`` refuses."""
    if not text or len(text) > _MAX_EXPIRY_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)


class UrlSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("URL signing key must be at least 32 bytes")
        self._key = key

    @classmethod
    def derive(cls, material: bytes) -> UrlSigner:
        return cls(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material))

    def sign(self, *parts: str) -> str:
        message = "\n".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, signature: str, *parts: str) -> bool:
        # "replace": a non-ASCII signature compares unequal instead of raising.
        return hmac.compare_digest(signature.encode("ascii", "replace"), self.sign(*parts).encode("ascii"))
