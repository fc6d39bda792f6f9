"""Running the gateway: uvicorn on uvloop + httptools, graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os

import uvicorn

from gateway.app import build_app
from gateway.date_header import DatedServer
from gateway.edge.protocol import EdgeProtocol
from gateway.settings import Settings, SettingsError
from gateway.tracebacks import install_on

log = logging.getLogger("gateway")

GRACEFUL_SHUTDOWN_SECONDS = 15


def uvicorn_config(settings: Settings, *, owns_process: bool = False) -> uvicorn.Config:
    """uvicorn hosts the edge protocol (``gateway.edge.protocol``): it owns sockets, lifespan and
    graceful shutdown; each connection is an ``EdgeProtocol``, not uvicorn's ASGI cycle."""
    config = uvicorn.Config(
        build_app(settings, owns_process=owns_process),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=EdgeProtocol,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        ws="none",
        lifespan="on",
        # X-Forwarded-For is not trusted: the bootstrap door looks at the real peer address.
        proxy_headers=False,
        server_header=False,
        access_log=False,
        # uvicorn's loggers write through the process's one handler (invoker.logs: text or JSON,
        # redacted), not handlers of their own.
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # After uvicorn set its logging up: an exception escaping the app writes its traceback at
    # most once per cause and minute (input that triggers it must not flood the log).
    install_on("uvicorn.error")
    return config


def serve(settings: Settings) -> int:
    if settings.processes > 1:
        if not settings.redis:
            raise SettingsError("--processes N > 1 requires --redis: processes share queues through Redis")
        from gateway.supervisor import Supervisor

        return Supervisor(settings).run()
    server = DatedServer(uvicorn_config(settings, owns_process=True))
    if settings.reuse_port:
        # A child of --processes N: the port is shared with its siblings, the parent told the way in.
        from gateway.supervisor import reuse_port_socket

        sock = reuse_port_socket(settings.host, settings.port)
        print(f"cfgate: gateway process {os.getpid()} serving on port {settings.port}", flush=True)
        server.run(sockets=[sock])
        return 0 if server.started else 1
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    scheme = "https" if settings.tls_cert else "http"
    grpc = settings.grpc_port or "a free port"
    metrics = "" if settings.metrics_port is None else f", metrics on port {settings.metrics_port or 'a free one'}"
    workers = settings.worker_port or "a free port"
    print(
        f"cfgate: serving {scheme}://{host}:{settings.port}, gRPC invocation on port {grpc}, "
        f"workers on port {workers}{metrics} "
        f"(domain {settings.domain}, data {settings.data_dir})\n"
        f"cfgate: mint an admin token from this machine with\n"
        f"  curl -X POST http://{host}:{settings.port}/v1/admin/keys -H 'Host: api-keys.{settings.domain}'\n"
        f"  or: cfgate init --gateway http://{host}:{settings.port}",
        flush=True,
    )
    server.run()
    return 0 if server.started else 1
