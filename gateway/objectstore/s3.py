"""An S3 bucket over httpx: put, get (streamed), head, delete, list. Every failure is an
``ObjectStoreError`` (UNAVAILABLE: not reachable / 5xx; REFUSED: any other unexpected answer)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from gateway.objectstore.config import ObjectStoreConfig
from gateway.objectstore.errors import ObjectStoreError, StoreFailure
from gateway.objectstore.sigv4 import canonical_query, sign_headers

CHUNK = 1 << 20
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    last_modified: float  # epoch seconds


def _failure(response: httpx.Response, what: str) -> ObjectStoreError:
    kind = StoreFailure.UNAVAILABLE if response.status_code >= 500 else StoreFailure.REFUSED
    return ObjectStoreError(kind, f"{what}: HTTP {response.status_code}")


class S3Bucket:
    def __init__(self, config: ObjectStoreConfig, *, timeout: float = 30.0) -> None:
        self.config = config
        self._host = urlsplit(config.endpoint).netloc
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0))

    async def aclose(self) -> None:
        await self._client.aclose()

    def _path(self, key: str | None) -> str:
        bucket = "/" + quote(self.config.bucket, safe="")
        return bucket if key is None else f"{bucket}/{quote(self.config.prefix + key, safe='/-_.~')}"

    async def _send(
        self,
        method: str,
        key: str | None,
        what: str,
        *,
        params: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        length: int | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        params = params or {}
        path = self._path(key)
        headers = sign_headers(
            method,
            self._host,
            path,
            params,
            region=self.config.region,
            access_key=self.config.access_key,
            secret_key=self.config.secret_key,
        )
        if length is not None:
            headers["content-length"] = str(length)
        query = canonical_query(params)
        url = f"{self.config.endpoint}{path}" + (f"?{query}" if query else "")
        request = self._client.build_request(method, url, headers=headers, content=content)
        try:
            return await self._client.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise ObjectStoreError(StoreFailure.UNAVAILABLE, f"{what}: {type(exc).__name__}") from None

    async def create_bucket(self) -> None:
        response = await self._send("PUT", None, "create bucket")
        if response.status_code not in (200, 409):  # 409: it exists already
            raise _failure(response, "create bucket")

    async def put_bytes(self, key: str, data: bytes) -> None:
        response = await self._send("PUT", key, "put", content=data)
        if response.status_code != 200:
            raise _failure(response, "put")

    async def put_file(self, key: str, path: Path) -> None:
        """Upload a local file (streamed: the bytes never sit in memory at once)."""
        size = path.stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        response = await self._send("PUT", key, "put", content=chunks(), length=size)
        if response.status_code != 200:
            raise _failure(response, "put")

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; ``FileNotFoundError`` (raised before the first chunk) if absent."""
        response = await self._send("GET", key, "get", stream=True)
        try:
            if response.status_code == 404:
                raise FileNotFoundError(key)
            if response.status_code != 200:
                raise _failure(response, "get")
            try:
                async for chunk in response.aiter_bytes(CHUNK):
                    yield chunk
            except httpx.TransportError as exc:
                raise ObjectStoreError(StoreFailure.UNAVAILABLE, f"get: {type(exc).__name__}") from None
        finally:
            await response.aclose()

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            return b"".join([chunk async for chunk in self.get(key)])
        except FileNotFoundError:
            return None

    async def exists(self, key: str) -> bool:
        response = await self._send("HEAD", key, "head")
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise _failure(response, "head")
        return True

    async def delete(self, key: str) -> None:
        response = await self._send("DELETE", key, "delete")
        if response.status_code not in (200, 204, 404):
            raise _failure(response, "delete")

    async def list(self, prefix: str) -> list[StoredObject]:
        """Every object whose key (below the configured prefix) starts with ``prefix``."""
        found: list[StoredObject] = []
        params = {"list-type": "2", "prefix": self.config.prefix + prefix}
        while True:
            response = await self._send("GET", None, "list", params=params)
            if response.status_code != 200:
                raise _failure(response, "list")
            root = ET.fromstring(response.content)
            for item in root.iter(f"{_NS}Contents"):
                key = item.findtext(f"{_NS}Key") or ""
                modified = datetime.fromisoformat((item.findtext(f"{_NS}LastModified") or "").replace("Z", "+00:00"))
                size = int(item.findtext(f"{_NS}Size") or 0)
                found.append(StoredObject(key[len(self.config.prefix) :], size, modified.timestamp()))
            token = root.findtext(f"{_NS}NextContinuationToken")
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return found
            params = {**params, "continuation-token": token}
