"""The worker agent's settings: one typed object, filled by the command line (``cli.py``) or by tests."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["Endpoint", "WorkerConfig", "default_instance_id", "parse_http_url"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A plain-HTTP address: host, port and path (with query)."""

    host: str
    port: int
    path: str


def parse_http_url(url: str) -> Endpoint:
    """Split ``http://host:port/path?query``; only plain HTTP is accepted (the container is local)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected an http://host:port URL, got {url!r}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Endpoint(parts.hostname, parts.port or 80, path)


def default_instance_id() -> str:
    """Stable for the life of the process, distinct between processes and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerConfig:
    gateway: str  # HOST:WORKER_PORT (the gateway's --worker-port)
    token: str = field(repr=False)
    function_id: str
    inference_url: str = "http://127.0.0.1:8000"
    version_id: str = ""
    health_url: str | None = None
    max_concurrency: int = 1
    work_dir: Path | None = None  # None: a temporary directory, removed on exit
    instance_id: str = field(default_factory=default_instance_id)
    # Waiting for the container before registering (NVCF waits up to 30 min).
    ready_timeout: float = 1800.0
    ready_interval: float = 0.5
    # In-flight work may take this long to finish after a drain or SIGTERM.
    grace_period: float = 30.0
    # Reconnect backoff: exponential with full jitter, from `backoff_initial` up to `backoff_max`.
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    register_timeout: float = 10.0
    tls: bool = False
    # Optional gRPC keepalive pings (0 = off; the gateway must permit them, see agent.py).
    keepalive_ms: int = 0
    # Descriptive fields sent in RegisterRequest (and fallbacks for NVCF-* deployment headers).
    gpu: str = ""
    instance_type: str = ""
    backend: str = ""
    location: str = ""
    cluster_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    progress_interval: float = 0.1
    # False: the container never writes large outputs or progress files, so invocations get no
    # NVCF-LARGE-OUTPUT-DIR (no per-invocation directory to create, list and recycle); bodies over
    # max_direct_response_bytes still become large results.
    large_outputs: bool = True
    # Where the version's secrets are written for the container (NVCF: /var/secrets/secrets.json,
    # on a volume the container shares); None: not delivered.
    secrets_file: Path | None = None
    # The agent's own Prometheus /metrics (invoker.worker.metrics): off unless a port is given.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if not self.function_id:
            raise ValueError("function_id is required")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError("metrics_port must be within 0..65535")
        if not self.gateway or ":" not in self.gateway:
            raise ValueError("gateway must be HOST:PORT")
        parse_http_url(self.inference_url)
        if self.health_url:
            parse_http_url(self.health_url)

    @property
    def inference(self) -> Endpoint:
        return parse_http_url(self.inference_url)
