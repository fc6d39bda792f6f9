"""Input assets: download each ``InputAsset.url`` to ``<asset dir>/<assetId>`` before the container call.

Signed URLs may point at the gateway or at an object store over HTTPS, so downloads use httpx
(redirects followed), all assets of an invocation at once. A relative URL (``/v2/nvcf/assets/...``)
is resolved against the gateway's HTTP address, which the gateway announces at Register as
``metadata["gatewayUrl"]``, and sent with ``metadata["gatewayHost"]`` as its ``Host``: the gateway
picks its services by Host, and that address may be a bare listen address (``127.0.0.1:8080``).
Absolute URLs (an object store's) go out as they are. Any failure (status other than 200,
network error, an asset id that is not a plain file name) fails the whole invocation; the caller
answers with a worker problem (500), as NVCF does.
"""

from __future__ import annotations

import asyncio
import os
import re
from urllib.parse import urljoin, urlsplit

import httpx

from protos.cfgate.worker.v1 import worker_pb2 as pb

__all__ = ["AssetError", "AssetFetcher", "safe_name"]

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class AssetError(Exception):
    pass


def safe_name(name: str) -> bool:
    """A single, harmless path component (ids are UUIDs in practice)."""
    return bool(_SAFE.fullmatch(name)) and name not in (".", "..")


class AssetFetcher:
    def __init__(self, timeout: float = 300.0) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=True)
        return self._client

    async def fetch_all(self, assets: list[pb.InputAsset], directory: str, base_url: str = "", host: str = "") -> None:
        """Download every asset into ``directory`` (which exists); relative URLs are under ``base_url``
        and sent with ``Host: host`` (when given)."""
        downloads = []
        for asset in assets:
            if not safe_name(asset.asset_id):
                raise AssetError(f"unusable asset id {asset.asset_id!r}")
            url, headers = asset.url, {}
            if not urlsplit(url).scheme:
                if not base_url:
                    raise AssetError(f"asset {asset.asset_id}: relative URL and no gatewayUrl from Register")
                url = urljoin(base_url.rstrip("/") + "/", url.lstrip("/"))
                if host:
                    headers["Host"] = host
            downloads.append((asset, url, headers))
        # Coroutines only once every asset checked out (an early raise would leave some unawaited).
        await asyncio.gather(*(self.fetch(asset, url, directory, headers) for asset, url, headers in downloads))

    async def fetch(
        self, asset: pb.InputAsset, url: str, directory: str, headers: dict[str, str] | None = None
    ) -> None:
        target = os.path.join(directory, asset.asset_id)
        try:
            async with self._http().stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    raise AssetError(f"asset {asset.asset_id}: download answered {response.status_code}")
                with open(target, "wb") as file:
                    async for data in response.aiter_bytes():
                        file.write(data)
        except httpx.HTTPError as exc:
            raise AssetError(f"asset {asset.asset_id}: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
