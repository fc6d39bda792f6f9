"""S3-compatible object storage for large results and asset blobs (shared by every gateway host).

``ObjectStoreConfig`` parses ``--object-store s3://bucket[/prefix]?endpoint=…&region=…``;
``S3Bucket`` is the client (SigV4 over httpx); ``ObjectStoreError`` the one failure root.
"""

from gateway.objectstore.config import ObjectStoreConfig
from gateway.objectstore.errors import ObjectStoreError, StoreFailure
from gateway.objectstore.s3 import S3Bucket

__all__ = ["ObjectStoreConfig", "ObjectStoreError", "S3Bucket", "StoreFailure"]
