"""Embedded asset storage: blobs on local disk behind HMAC-signed, expiring upload/download URLs.

``AssetService`` (at ``runtime.assets``) is what the API and the invocation layer use;
``BlobStore`` is the seam for another backend (an S3-compatible store is not implemented).
"""

from gateway.assets.blobs import BlobStore, BlobTooLarge, LocalBlobStore
from gateway.assets.service import AssetNotFound, AssetService
from gateway.assets.signing import UrlSigner

__all__ = ["AssetNotFound", "AssetService", "BlobStore", "BlobTooLarge", "LocalBlobStore", "UrlSigner"]
