"""The one typed settings object, read from CLI flags and ``CFGATE_<NAME>`` environment variables.

Nothing else in the code base reads the environment for configuration: the command line builds a
``Settings`` once at the edge and hands it down.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.objectstore.config import ObjectStoreConfig, ObjectStoreConfigError
from gateway.public_urls import PublicUrls
from invoker.limits import MAX_INVOCATION_BODY_BYTES
from invoker.logs import LOG_FORMATS

ENV_PREFIX = "CFGATE_"

DEFAULT_NCA_ID = "nvcf-default"
DEFAULT_GRPC_PORT = 10081
DEFAULT_WORKER_PORT = 10082
DEFAULT_ADMIN_CLIENT_ID = "admin-issuer-proxy"
DEFAULT_ISSUER = "http://api.nvcf.svc.cluster.local"
# Services that may be proxied to an upstream (invocation is the gateway's own hot path).
UPSTREAM_SERVICES = ("api", "api-keys", "tasks", "sis", "nico")


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    # gRPC invocation of functions' own services (NVCF's client port) and, on a port of its own,
    # the worker endpoint: 10082 is used by nothing NVCF listens on (8080, 8181, 9090, 10081,
    # 10086, 4222), so a client pointed at 10081 never reaches the worker service.
    grpc_port: int = DEFAULT_GRPC_PORT
    worker_port: int = DEFAULT_WORKER_PORT
    domain: str = "localhost"
    data_dir: Path = Path("./.cfgate")
    redis: str | None = None
    database: str | None = None
    processes: int = 1
    # Bind the HTTP port with SO_REUSEPORT: set by ``--processes N`` for its children, which share it.
    reuse_port: bool = False
    # Bootstrap door (POST /v1/admin/keys and bearer-less key management): open to loopback
    # clients unless disabled, and to anyone presenting this secret.
    bootstrap_secret: str | None = None
    bootstrap_loopback: bool = True
    issuer: str = DEFAULT_ISSUER
    admin_client_id: str = DEFAULT_ADMIN_CLIENT_ID
    default_nca_id: str = DEFAULT_NCA_ID
    admin_token_ttl_seconds: int = 12 * 3600
    max_api_key_lifetime_days: int = 2 * 365
    # Other JWT issuers to trust, as "issuer=jwks_url" pairs.
    trusted_issuers: tuple[str, ...] = field(default_factory=tuple)
    max_control_body_bytes: int = 1 << 20
    # base64 of 32 bytes; shared by every node. Default: generated into the data directory.
    secret_key: str | None = None
    # Seals the signing and sealing keys kept in the database (gateway.auth.installation): base64
    # of 32 bytes, or a file holding it. Default: <data_dir>/master-key, generated. Every host of
    # an installation needs the same one.
    master_key: str | None = None
    master_key_file: str | None = None
    # Embedded asset storage (POST /v2/nvcf/assets): blob directory (default <data_dir>/assets),
    # lifetime of the pre-signed upload/download URLs (NVCF: 35 min) and the largest upload.
    asset_dir: str | None = None
    asset_url_ttl_seconds: int = 35 * 60
    max_asset_bytes: int = 5 << 30
    # Shared S3-compatible store for large results and asset blobs (every host of a many-host
    # installation must use the same one): s3://bucket[/prefix]?endpoint=http://host:port&region=…
    # Credentials: CFGATE_OBJECT_STORE_ACCESS_KEY / _SECRET_KEY, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    object_store: str | None = None
    object_store_access_key: str | None = None
    object_store_secret_key: str | None = None
    log_level: str = "info"
    # Log lines as "text" or "json" (invoker.logs); access_log: one line per request (gateway.access_log).
    log_format: str = "text"
    access_log: bool = False
    # Invocation: request body cap, how long a request may wait for a worker, how long finished
    # results stay available for polling, per-version queue bound (past it: 429), redeliveries.
    max_invocation_body_bytes: int = MAX_INVOCATION_BODY_BYTES
    queue_lifetime_seconds: int = 3600
    result_ttl_seconds: int = 3600
    max_queue_depth: int = 10_000
    max_attempts: int = 3
    worker_heartbeat_ms: int = 2000
    region: str = "local"
    # NVCT: how often the task scheduler looks at queued and running tasks, and how long a
    # launched task may go without a heartbeat from its worker before it is ERRORED.
    task_tick_ms: int = 1000
    task_worker_lost_seconds: int = 30
    # How clients reach this gateway: the base of every URL it hands out (302 locations, asset
    # URLs, jwks_uri), a service label put in front of its host (gateway/public_urls.py). Default
    # http://<domain>:<port>; never the request's Host.
    public_url: str | None = None
    # Backing services proxied to a real upstream instead of served embedded, as "service=url"
    # pairs (CFGATE_UPSTREAMS=api-keys=http://10.0.0.7:8000,tasks=http://...), and how long an
    # upstream may take to start answering (or pause in its answer) before a 504.
    upstreams: tuple[str, ...] = field(default_factory=tuple)
    upstream_timeout_seconds: int = 60
    # Host names (or addresses) that reach the api service as they are, besides api.<domain>: for
    # clients that send their base URL's own host, such as ngcsdk with NGC_CLI_API_URL
    # (CFGATE_API_HOSTS=nvcf.example.com,10.0.0.5). Compared without port, case-insensitively.
    api_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Embedded NICo REST (nico.<domain>): the site agent's machine inventory (JSON; default: a small
    # built-in one) and its clock, one site/instance state transition per step.
    nico_inventory: str | None = None
    nico_step_ms: int = 1000
    # The HTTP edge (gateway.edge): a request's head must arrive within header_timeout_seconds
    # (and a body may not pause longer), an idle keep-alive connection is closed after
    # keepalive_timeout_seconds; heads over max_header_bytes / max_header_count get 431;
    # past max_connections a process answers only /health; queued request bodies may hold
    # max_queued_body_bytes in all (past it: 429); a streamed answer's client that falls more
    # than max_stream_backlog_bytes behind is dropped. TLS when both tls_cert and tls_key are set.
    header_timeout_seconds: int = 10
    keepalive_timeout_seconds: int = 5
    max_header_bytes: int = 32 << 10
    max_header_count: int = 100
    max_connections: int = 1000
    max_queued_body_bytes: int = 1 << 30
    max_stream_backlog_bytes: int = 8 << 20
    tls_cert: str | None = None
    tls_key: str | None = None
    # Prometheus /metrics on a port of its own (gateway.metrics): off unless set; 0 picks a free
    # one. Function ids label the invocation series only with metrics_function_labels.
    # metrics_socket: where a child of --processes N serves its metrics for the parent (set by
    # the supervisor, which serves the host's aggregate on metrics_port).
    metrics_port: int | None = None
    metrics_function_labels: bool = False
    metrics_socket: str | None = None

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port is not None or self.metrics_socket is not None

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the store: SQLite under the data directory unless ``database`` is set."""
        if self.database:
            return self.database
        return f"sqlite:///{(self.data_dir / 'cfgate.db').resolve()}"

    @property
    def asset_path(self) -> Path:
        """Where uploaded assets are kept: ``<asset_dir>/<ncaId>/<assetId>``."""
        return Path(self.asset_dir) if self.asset_dir else self.data_dir / "assets"

    def object_store_config(self) -> ObjectStoreConfig | None:
        if not self.object_store:
            return None
        try:
            return ObjectStoreConfig.parse(
                self.object_store, self.object_store_access_key, self.object_store_secret_key
            )
        except ObjectStoreConfigError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def public_urls(self) -> PublicUrls:
        return PublicUrls.configured(self.public_url, self.domain, self.port)

    @property
    def http_url(self) -> str:
        """Where workers fetch input assets: the api service's public URL, or the listen address."""
        if self.public_url:
            return self.public_urls.service("api")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def trusted_issuer_map(self) -> dict[str, str]:
        issuers: dict[str, str] = {}
        for pair in self.trusted_issuers:
            iss, sep, url = pair.partition("=")
            if not sep or not iss.strip() or not url.strip().startswith(("http://", "https://")):
                raise SettingsError(f"trusted issuer must be 'issuer=https://…/jwks', got {pair!r}")
            issuers[iss.strip()] = url.strip()
        return issuers

    def upstream_map(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for pair in self.upstreams:
            service, sep, url = pair.partition("=")
            service, url = service.strip().lower(), url.strip()
            if not sep or service not in UPSTREAM_SERVICES or not url.startswith("http://") or len(url) <= 7:
                raise SettingsError(
                    f"upstream must be 'SERVICE=http://host:port' with SERVICE one of {', '.join(UPSTREAM_SERVICES)}, "
                    f"got {pair!r}"
                )
            found[service] = url
        return found

    def environment(self) -> dict[str, str]:
        """These settings as ``CFGATE_*`` variables: what ``load`` reads back into equal settings."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = str(value)
            env[ENV_PREFIX + f.name.upper()] = text
        return env

    def _validate_api_hosts(self) -> None:
        for name in self.api_hosts:
            if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", name) or name.startswith("."):
                raise SettingsError(f"--api-host must be a host name or IPv4 address without port, got {name!r}")

    def _validate_ports(self) -> None:
        if not all(0 <= p <= 65535 for p in (self.port, self.grpc_port, self.worker_port)):
            raise SettingsError("ports must be within 0..65535")
        taken = [p for p in (self.port, self.grpc_port, self.worker_port) if p]
        if len(set(taken)) != len(taken):
            raise SettingsError("--port, --grpc-port and --worker-port must differ")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise SettingsError("--metrics-port must be within 0..65535")

    def validate(self) -> Settings:
        self._validate_ports()
        if self.processes < 1:
            raise SettingsError("--processes must be at least 1")
        if not self.domain or self.domain.startswith(".") or " " in self.domain:
            raise SettingsError(f"invalid domain {self.domain!r}")
        if self.admin_token_ttl_seconds < 60:
            raise SettingsError("admin token lifetime must be at least 60 s")
        if self.asset_url_ttl_seconds < 60:
            raise SettingsError("asset URL lifetime must be at least 60 s")
        if self.max_asset_bytes < 1:
            raise SettingsError("the asset size limit must be at least 1 byte")
        if self.task_tick_ms < 10 or self.task_worker_lost_seconds < 1:
            raise SettingsError("task_tick_ms must be at least 10 and task_worker_lost_seconds at least 1")
        self.trusted_issuer_map()
        self.upstream_map()
        try:
            _ = self.public_urls  # parsed for its errors
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.upstream_timeout_seconds < 1:
            raise SettingsError("the upstream timeout must be at least 1 s")
        self._validate_api_hosts()
        if self.nico_step_ms < 10:
            raise SettingsError("nico_step_ms must be at least 10")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}")
        self._validate_edge()
        self.object_store_config()
        return self

    def _validate_edge(self) -> None:
        if not 1 <= self.max_invocation_body_bytes <= MAX_INVOCATION_BODY_BYTES:
            raise SettingsError(
                f"max_invocation_body_bytes must be within 1..{MAX_INVOCATION_BODY_BYTES} (the worker's message limit)"
            )
        if self.header_timeout_seconds < 1 or self.keepalive_timeout_seconds < 1:
            raise SettingsError("header and keep-alive timeouts must be at least 1 s")
        if self.max_header_bytes < 1024 or self.max_header_count < 8 or self.max_connections < 1:
            raise SettingsError("max_header_bytes >= 1024, max_header_count >= 8, max_connections >= 1")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("TLS needs both --tls-cert and --tls-key")

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, then ``CFGATE_*`` environment variables, then explicit overrides (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _cast(f.name, f.type, raw)
        # The object store's keys may come as the standard AWS variables too.
        for name, standard in (
            ("object_store_access_key", "AWS_ACCESS_KEY_ID"),
            ("object_store_secret_key", "AWS_SECRET_ACCESS_KEY"),
        ):
            if name not in values and env.get(standard):
                values[name] = env[standard]
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
        return cls(**values).validate()


def _cast(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    try:
        if kind in ("int", "int | None"):
            return int(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot use {raw!r}") from exc
    return raw
