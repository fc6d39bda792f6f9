"""What a load generator sends: one request, repeated."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.procs import LOOPBACK


def body_1k() -> bytes:
    """The 1 KiB JSON body every echo scenario sends."""
    document: dict[str, object] = {"input": "", "n": 1}
    document["input"] = "x" * (1024 - len(json.dumps(document, separators=(",", ":"))))
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Target:
    port: int
    path: str
    method: str = "POST"
    host: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    scheme: str = "http"  # "https": the server speaks TLS (a self-signed certificate, not verified)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}{self.path}"

    def all_headers(self) -> dict[str, str]:
        headers = {"Host": self.host or f"{LOOPBACK}:{self.port}", **self.headers}
        if self.body:
            headers.setdefault("Content-Type", "application/json")
        return headers

    def raw_request(self) -> bytes:
        """The request as bytes on the wire (HTTP/1.1 keep-alive)."""
        lines = [f"{self.method} {self.path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.all_headers().items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def to_json(self) -> dict[str, object]:
        return {"port": self.port, "path": self.path, "method": self.method, "host": self.host, "headers": self.headers}
