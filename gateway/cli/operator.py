"""The operator's commands: ``serve``, ``worker``, ``demo`` and ``rotate-signing-key``.

Every ``serve`` flag also reads ``CFGATE_<NAME>`` (Settings does that); unset flags stay ``None``
here so the environment is not overridden.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gateway.cli.failures import CliFailure, ExitCode
from gateway.settings import Settings, SettingsError

# Ctrl-C: the shell's convention for "ended by SIGINT".
SIGINT_EXIT = 130


def _logging(settings: Settings | None = None) -> None:
    from invoker.logs import configure_logging, register_secret

    if settings is None:
        configure_logging("info")
        return
    configure_logging(settings.log_level, settings.log_format)
    for secret in (
        settings.bootstrap_secret,
        settings.master_key,
        settings.secret_key,
        settings.object_store_secret_key,
    ):
        register_secret(secret)


def _master_key_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--master-key-file",
        "master_key_file",
        help="File with the installation's master key (base64; or CFGATE_MASTER_KEY); default "
        "<data-dir>/master-key, generated. Every host of an installation needs the same one.",
    )(command)


def _settings(options: dict[str, Any]) -> Settings:
    overrides = {k: v for k, v in options.items() if v is not None and v != ()}
    for repeated in ("trusted_issuers", "upstreams", "api_hosts"):
        if repeated in overrides:
            overrides[repeated] = tuple(overrides[repeated])
    try:
        return Settings.load(overrides)
    except SettingsError as exc:
        raise CliFailure(str(exc), ExitCode.USAGE) from None


@click.command("serve")
@click.option("--host", help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, help="HTTP port (default 8080).")
@click.option("--grpc-port", "grpc_port", type=int, help="gRPC invocation port for clients (default 10081, as NVCF).")
@click.option("--worker-port", "worker_port", type=int, help="Worker endpoint port (gRPC; default 10082).")
@click.option("--domain", help="Base domain for Host routing (default localhost).")
@click.option(
    "--public-url", "public_url", help="Base URL clients reach the gateway at (default http://<domain>:<port>)."
)
@click.option("--data-dir", "data_dir", type=click.Path(path_type=Path), help="Data directory (default ./.cfgate).")
@click.option("--redis", help="Redis URL (shared queues; needed for --processes > 1).")
@click.option("--database", help="SQL store URL: sqlite:///path (default) or postgresql://...")
@click.option("--processes", type=int, help="Gateway processes sharing the port (default 1).")
@click.option("--bootstrap-secret", "bootstrap_secret", help="Secret that opens the admin-token door remotely.")
@click.option(
    "--no-bootstrap-loopback",
    "bootstrap_loopback",
    flag_value=False,
    default=None,
    help="Close the admin-token door to loopback clients too.",
)
@click.option(
    "--trusted-issuer",
    "trusted_issuers",
    multiple=True,
    metavar="ISSUER=JWKS_URL",
    help="Also accept JWTs of this issuer, verified with its JWKS (repeatable).",
)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="SERVICE=URL",
    help="Proxy this backing service (api, api-keys, tasks, sis, nico) to an upstream (repeatable).",
)
@click.option(
    "--api-host",
    "api_hosts",
    multiple=True,
    metavar="HOST",
    help="Also serve the api service on this Host (e.g. the host of NGC_CLI_API_URL for ngcsdk; repeatable).",
)
@click.option(
    "--object-store",
    "object_store",
    metavar="S3_URL",
    help="Shared S3-compatible store for large results and assets: s3://bucket?endpoint=http://host:port&region=…",
)
@click.option("--log-level", "log_level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option(
    "--log-format", "log_format", type=click.Choice(["text", "json"]), help="Log lines as text (default) or JSON."
)
@click.option(
    "--access-log/--no-access-log",
    "access_log",
    default=None,
    help="One log line per request: method, service, path template, status, duration, request id.",
)
@click.option(
    "--nico-inventory",
    "nico_inventory",
    type=click.Path(),
    help="Embedded NICo site inventory (JSON file).",
)
@click.option(
    "--metrics-port",
    "metrics_port",
    type=int,
    help="Serve Prometheus /metrics on this port of --host (default: off). Not on the public port: "
    "scrapers reach it, clients do not. With --processes N one scrape covers every process.",
)
@click.option(
    "--metrics-function-labels",
    "metrics_function_labels",
    flag_value=True,
    default=None,
    help="Label the invocation latency and outcome series with the function id (one series per function).",
)
@click.option("--tls-cert", "tls_cert", metavar="PEM", help="Serve HTTPS with this certificate (chain).")
@click.option("--tls-key", "tls_key", metavar="PEM", help="The private key of --tls-cert.")
@_master_key_option
def serve_command(**options: Any) -> int:
    """Run the gateway (every flag also reads CFGATE_<NAME>)."""
    settings = _settings(options)
    _logging(settings)
    from gateway.auth.installation import InstallationKeyError, master_box
    from gateway.server import serve

    try:
        # An unreadable or malformed master key is a usage error here, not a failed app startup.
        master_box(settings)
        return serve(settings)
    except (SettingsError, InstallationKeyError) as exc:
        raise CliFailure(str(exc), ExitCode.USAGE) from None
    except KeyboardInterrupt:
        # uvicorn has shut down gracefully by now and re-raised the SIGINT it caught.
        return SIGINT_EXIT


@click.command("rotate-signing-key")
@click.option("--data-dir", "data_dir", type=click.Path(path_type=Path), help="Data directory (default ./.cfgate).")
@click.option("--database", help="The installation's SQL store URL (as given to serve).")
@_master_key_option
def rotate_command(**options: Any) -> int:
    """Add a new token-signing key for every gateway of the installation; live tokens stay valid."""
    settings = _settings(options)
    _logging(settings)
    import asyncio

    from gateway.auth.installation import InstallationKeyError, rotate_signing_key

    try:
        key, published = asyncio.run(rotate_signing_key(settings))
    except InstallationKeyError as exc:
        raise CliFailure(str(exc), ExitCode.USAGE) from None
    click.echo(f"new signing key {key.kid}; {published} key(s) published (every gateway of the installation)")
    return 0


@click.command("demo")
@click.option("--port", type=int, default=8080, show_default=True, help="HTTP port (0: any free port).")
@click.option(
    "--grpc-port",
    "grpc_port",
    type=int,
    default=10081,
    show_default=True,
    help="gRPC invocation port (0: any free port).",
)
@click.option(
    "--worker-port", "worker_port", type=int, default=10082, show_default=True, help="Worker port (0: any free port)."
)
@click.option(
    "--data-dir", "data_dir", type=click.Path(path_type=Path), help="Default: a temporary directory, removed at exit."
)
@click.option("--once", is_flag=True, help="Exit after the sample invocation.")
@click.option("--nico", is_flag=True, help="Also one NICo REST call (service account) on nico.<domain>.")
@click.option(
    "--llm", is_flag=True, help="Also a sample LLM function and one OpenAI chat completion on llm.invocation."
)
def demo_command(
    port: int, grpc_port: int, worker_port: int, data_dir: Path | None, once: bool, nico: bool, llm: bool
) -> int:
    """Gateway, sample function and worker; one invocation.

    Prints the curl that repeats the invocation; runs until Ctrl-C unless --once.
    """
    _logging()
    from gateway.demo import DemoOptions
    from gateway.demo import main as demo_main

    return demo_main(DemoOptions(port, grpc_port, worker_port, data_dir, once, nico, llm))


@click.command(
    "worker",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def worker_command(arguments: tuple[str, ...]) -> int:
    """Worker agent beside a container (or --tasks)."""
    from invoker.worker.cli import main as worker_main

    return worker_main(list(arguments))


OPERATOR_COMMANDS = (serve_command, worker_command, demo_command, rotate_command)
