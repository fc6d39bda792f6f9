"""The URLs the gateway hands out (302 locations, upload URLs, ``jwks_uri``): from configuration only.

A request's ``Host`` header is whatever the client sent, so it never goes into a URL the gateway
signs or publishes (a client could otherwise point another client's download, or an identity
provider's key discovery, at a host of its choosing).

The base is ``--public-url`` (``CFGATE_PUBLIC_URL``): how clients reach the gateway, e.g.
``https://nvcf.example.com``. Services are chosen by Host, so a service's URL puts its label in
front of the base's host name: ``https://invocation.nvcf.example.com``,
``https://api.nvcf.example.com``, ``https://api-keys.nvcf.example.com`` (a path prefix of the base
is kept). Without ``--public-url`` the base is ``http://<domain>:<port>`` (``--domain``, default
``localhost``, and the listening port): ``http://invocation.localhost:8080`` by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PublicUrls"]


@dataclass(frozen=True, slots=True)
class PublicUrls:
    scheme: str
    host: str
    port: int | None  # None: the scheme's default port
    prefix: str  # path prefix without a trailing slash ("" for none)

    @classmethod
    def parse(cls, url: str) -> PublicUrls:
        """``http(s)://host[:port][/prefix]``; ValueError for anything else."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"public URL must be http(s)://host[:port][/path], got {url!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"public URL must have no query, fragment or credentials, got {url!r}")
        if ":" in parts.hostname:
            raise ValueError(f"public URL needs a host name or IPv4 address (labels go in front), got {url!r}")
        port = parts.port  # ValueError on a bad port
        return cls(parts.scheme, parts.hostname.lower(), port, parts.path.rstrip("/"))

    @classmethod
    def configured(cls, public_url: str | None, domain: str, port: int) -> PublicUrls:
        """``public_url`` if set, else ``http://<domain>:<port>``."""
        if public_url:
            return cls.parse(public_url)
        return cls("http", domain.lower().rstrip("."), port or None, "")

    def host_header(self, label: str) -> str:
        """The ``Host`` that routes to service ``label`` (port omitted: routing ignores it)."""
        return f"{label}.{self.host}"

    def service(self, label: str) -> str:
        """Base URL of service ``label`` (``api``, ``invocation``, ``api-keys`` …), no trailing slash."""
        default = {"http": 80, "https": 443}[self.scheme]
        port = f":{self.port}" if self.port is not None and self.port != default else ""
        return f"{self.scheme}://{label}.{self.host}{port}{self.prefix}"
