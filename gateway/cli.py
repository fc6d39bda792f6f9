"""``cfgate`` command line: ``serve`` and operator commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.settings import Settings, SettingsError


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the gateway (every flag also reads CFGATE_<NAME>)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default 8080)")
    p.add_argument("--grpc-port", dest="grpc_port", type=int, help="worker gRPC port (default 10081)")
    p.add_argument("--domain", help="base domain for Host routing (default localhost)")
    p.add_argument("--data-dir", dest="data_dir", type=Path, help="data directory (default ./.cfgate)")
    p.add_argument("--redis", help="Redis URL (shared queues; needed for --processes > 1)")
    p.add_argument("--database", help="SQL store URL: sqlite:///path (default) or postgresql://…")
    p.add_argument("--processes", type=int, help="gateway processes sharing the port (default 1)")
    p.add_argument(
        "--bootstrap-secret", dest="bootstrap_secret", help="secret that opens the admin-token door remotely"
    )
    p.add_argument(
        "--no-bootstrap-loopback",
        dest="bootstrap_loopback",
        action="store_const",
        const=False,
        help="close the admin-token door to loopback clients too",
    )
    p.add_argument(
        "--trusted-issuer",
        dest="trusted_issuers",
        action="append",
        metavar="ISSUER=JWKS_URL",
        help="also accept JWTs of this issuer, verified with its JWKS (repeatable)",
    )
    p.add_argument(
        "--upstream",
        dest="upstreams",
        action="append",
        metavar="SERVICE=URL",
        help="proxy this backing service (api, api-keys, tasks, sis, nico) to an upstream (repeatable)",
    )
    p.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--tls-cert", dest="tls_cert", metavar="PEM", help="serve HTTPS with this certificate (chain)")
    p.add_argument("--tls-key", dest="tls_key", metavar="PEM", help="the private key of --tls-cert")


def _rotate_parser(sub: Any) -> None:
    p = sub.add_parser("rotate-signing-key", help="add a new token-signing key; live tokens stay valid")
    p.add_argument("--data-dir", dest="data_dir", type=Path)


def _demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="gateway + sample echo function + worker, one invocation, and its curl")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (0: any free port)")
    p.add_argument("--grpc-port", dest="grpc_port", type=int, default=10081, help="worker gRPC port (0: any free port)")
    p.add_argument("--data-dir", dest="data_dir", type=Path, help="default: a fresh temporary directory")
    p.add_argument("--once", action="store_true", help="exit after the sample invocation")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    for repeated in ("trusted_issuers", "upstreams"):
        if repeated in overrides:
            overrides[repeated] = tuple(overrides[repeated])
    return Settings.load(overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cfgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _rotate_parser(sub)
    _demo_parser(sub)
    sub.add_parser(
        "worker", help="the worker agent beside an inference container (see cfgate worker --help)", add_help=False
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["worker"]:
        from invoker.worker.cli import main as worker_main

        return worker_main(arguments[1:])
    args = parser.parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "demo":
        from gateway.demo import main as demo_main

        return demo_main(args.port, args.grpc_port, args.data_dir, args.once)
    try:
        settings = _settings(args)
        if args.command == "serve":
            from gateway.server import serve

            return serve(settings)
        if args.command == "rotate-signing-key":
            from gateway.auth.keyring import KeyRing

            ring = KeyRing.open(settings.data_dir, settings.admin_token_ttl_seconds + 60)
            key = ring.rotate()
            print(f"new signing key {key.kid}; {len(ring.jwks()['keys'])} key(s) published")
            return 0
    except SettingsError as exc:
        print(f"cfgate: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
