"""Embedded asset storage: blobs on local disk behind HMAC-signed, expiring upload/download URLs.

``AssetService`` (at ``runtime.assets``) is what the API and the invocation layer use;
``BlobStore`` is the seam: ``LocalBlobStore`` (embedded default) or ``S3BlobStore`` (shared bucket).
"""

from gateway.assets.blobs import BlobStore, BlobTooLarge, LocalBlobStore
from gateway.assets.s3blobs import S3BlobStore
from gateway.assets.service import AssetNotFound, AssetService
from gateway.assets.signing import UrlSigner

__all__ = ["AssetNotFound", "AssetService", "BlobStore", "BlobTooLarge", "LocalBlobStore", "S3BlobStore", "UrlSigner"]
