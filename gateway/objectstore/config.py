"""``s3://bucket[/prefix]?endpoint=http://host:port&region=us-east-1`` plus an access key pair.

Path-style addressing (``<endpoint>/<bucket>/<key>``) so any S3-compatible server works (MinIO,
Ceph RGW, versitygw, moto, AWS). Without ``endpoint`` the AWS regional endpoint is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


class ObjectStoreConfigError(ValueError):
    """The object-store URL or its credentials cannot be used."""


@dataclass(frozen=True, slots=True)
class ObjectStoreConfig:
    bucket: str
    prefix: str
    endpoint: str
    region: str
    access_key: str
    secret_key: str

    @classmethod
    def parse(cls, url: str, access_key: str | None, secret_key: str | None) -> ObjectStoreConfig:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ObjectStoreConfigError(f"object store must be 's3://bucket[/prefix]?endpoint=…', got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ObjectStoreConfigError(f"object store URL: unknown parameter(s) {', '.join(sorted(unknown))}")
        region = query.get("region") or "us-east-1"
        endpoint = (query.get("endpoint") or f"https://s3.{region}.amazonaws.com").rstrip("/")
        if not endpoint.startswith(("http://", "https://")) or len(urlsplit(endpoint).netloc) == 0:
            raise ObjectStoreConfigError(f"object store endpoint must be http(s)://host[:port], got {endpoint!r}")
        if not access_key or not secret_key:
            raise ObjectStoreConfigError(
                "object store credentials missing: set CFGATE_OBJECT_STORE_ACCESS_KEY and "
                "CFGATE_OBJECT_STORE_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        prefix = parts.path.strip("/")
        return cls(parts.netloc, prefix + "/" if prefix else "", endpoint, region, access_key, secret_key)
