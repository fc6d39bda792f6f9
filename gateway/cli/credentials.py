"""``cfgate init``, ``cfgate token`` and ``cfgate api-key generate|list|delete``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from gateway.auth.scopes import (
    ALL_SCOPES,
    FUNCTION_KEY_DEFAULT_SCOPES,
    FUNCTIONS_PRODUCT,
    TASK_KEY_DEFAULT_SCOPES,
    TASKS_PRODUCT,
)
from gateway.cli.context import CliContext, json_option, pass_cli
from gateway.cli.failures import CliFailure, ExitCode
from gateway.cli.session import expiry_seconds
from gateway.cli.state import CliState
from gateway.client import DEFAULT_KEY_OWNER, FUNCTIONS_KEY_ISSUER, TASKS_KEY_ISSUER, ApiError, ControlPlane
from gateway.settings import DEFAULT_NCA_ID

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

# --for: (issuer, product, resources, default scopes)
_KEY_KINDS: dict[str, tuple[str, str, list[dict[str, str]], tuple[str, ...]]] = {
    "function": (
        FUNCTIONS_KEY_ISSUER,
        FUNCTIONS_PRODUCT,
        [{"id": "*", "type": "account-functions"}, {"id": "*", "type": "authorized-functions"}],
        FUNCTION_KEY_DEFAULT_SCOPES,
    ),
    "task": (TASKS_KEY_ISSUER, TASKS_PRODUCT, [{"id": "*", "type": "account-tasks"}], TASK_KEY_DEFAULT_SCOPES),
}
_ISSUER_KIND = {issuer: kind for kind, (issuer, *_) in _KEY_KINDS.items()}


def duration_seconds(text: str) -> int:
    """``90``, ``30s``, ``15m``, ``24h``, ``7d``."""
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration like 30m, 24h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@click.command("init")
@click.option(
    "--gateway",
    envvar="CFGATE_GATEWAY",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The gateway's HTTP address [env CFGATE_GATEWAY].",
)
@click.option("--domain", default="localhost", show_default=True, help="Its base domain (Host: <service>.<domain>).")
@click.option("--nca-id", default=DEFAULT_NCA_ID, show_default=True, help="The account (NCA id) to work in.")
@click.option(
    "--bootstrap-secret",
    envvar="CFGATE_BOOTSTRAP_SECRET",
    default=None,
    help="Opens the admin-token door from another machine [env CFGATE_BOOTSTRAP_SECRET].",
)
@json_option
@pass_cli
def init_command(cli: CliContext, gateway: str, domain: str, nca_id: str, bootstrap_secret: str | None) -> None:
    """Mint an admin token; keep it and the address (state file).

    The token is refreshed by later commands when it is about to expire.
    """
    with ControlPlane(gateway, domain=domain) as plane:
        minted = plane.mint_admin_token(bootstrap_secret)
    expires_at = str(minted["expires_at"])
    state = CliState(
        gateway=gateway.rstrip("/"),
        domain=domain,
        nca_id=nca_id,
        admin_token=str(minted["value"]),
        admin_token_expires_at=expiry_seconds(expires_at),
        bootstrap_secret=bootstrap_secret,
    )
    state.save(cli.state_path)
    summary = {
        "gateway": state.gateway,
        "domain": domain,
        "ncaId": nca_id,
        "stateFile": str(cli.state_path),
        "adminTokenExpiresAt": expires_at,
        "scopes": minted.get("scopes", []),
    }
    cli.output.record(
        summary,
        [
            ("gateway", "gateway"),
            ("domain", "domain"),
            ("ncaId", "account"),
            ("adminTokenExpiresAt", "admin token expires"),
            ("stateFile", "state file"),
        ],
    )


@click.command("token")
@pass_cli
def token_command(cli: CliContext) -> None:
    """Print the admin token (for CFGATE_WORKER_TOKEN=$(cfgate token))."""
    click.echo(cli.session.admin_token())


@click.group("api-key")
def api_key_group() -> None:
    """Generate, list and delete API keys (nvapi-...)."""


def _expires_at(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _scopes(raw: str | None, defaults: tuple[str, ...]) -> list[str]:
    if not raw:
        return list(defaults)
    scopes = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        raise click.BadParameter(f"unknown scope {unknown[0] if unknown else raw!r}", param_hint="--scopes")
    return scopes


@api_key_group.command("generate")
@click.option("--for", "kind", type=click.Choice(sorted(_KEY_KINDS)), default="function", show_default=True)
@click.option("--scopes", default=None, help="Comma-separated scopes (default: the kind's NVCF defaults).")
@click.option("--expires-in", default="24h", show_default=True, help="Lifetime: 30m, 24h, 7d ...")
@click.option("--description", default="cfgate cli key", show_default=True)
@click.option("--owner", default=DEFAULT_KEY_OWNER, show_default=True, help="Key-Owner-Id.")
@click.option("--no-save", is_flag=True, help="Do not keep the key in the state file.")
@json_option
@pass_cli
def generate_key(
    cli: CliContext, kind: str, scopes: str | None, expires_in: str, description: str, owner: str, no_save: bool
) -> None:
    """Create a key and keep it in the state file (function keys invoke and read queues, task keys run tasks)."""
    issuer, product, resources, defaults = _KEY_KINDS[kind]
    policy = {"product": product, "scopes": _scopes(scopes, defaults), "resources": resources}
    lifetime = duration_seconds(expires_in)
    session = cli.session
    key = session.admin().create_key(issuer, owner, description, _expires_at(lifetime), [policy])
    if not no_save:
        state = session.state
        if kind == "task":
            state.task_api_key, state.task_api_key_id = key["value"], key["id"]
        else:
            state.api_key, state.api_key_id = key["value"], key["id"]
        state.save(session.state_path)
    row = {**key, "for": kind, "scopes": policy["scopes"]}
    cli.output.record(
        row,
        [("id", "id"), ("for", "for"), ("value", "key"), ("expires_at", "expires"), ("scopes", "scopes")],
        raw=key,
    )
    if not no_save:
        cli.output.say(f"kept in {session.state_path} for the {kind} commands")


@api_key_group.command("list")
@click.option("--owner", default=DEFAULT_KEY_OWNER, show_default=True, help="Key-Owner-Id.")
@json_option
@pass_cli
def list_keys(cli: CliContext, owner: str) -> None:
    """List the owner's function and task keys."""
    plane = cli.session.admin()
    keys: list[dict[str, Any]] = []
    for kind, (issuer, *_) in _KEY_KINDS.items():
        keys += [{**k, "for": kind} for k in plane.list_keys(issuer, owner)]
    columns = [("id", "id"), ("for", "for"), ("description", "description"), ("status", "status")]
    cli.output.table(keys, [*columns, ("expires_at", "expires")])


@api_key_group.command("delete")
@click.argument("key_id")
@json_option
@pass_cli
def delete_key(cli: CliContext, key_id: str) -> None:
    """Delete a key (and forget it if the state file holds it)."""
    session = cli.session
    try:
        session.admin().delete_key(key_id)
    except ApiError as exc:
        if exc.status == 404:
            raise CliFailure(f"API key {key_id} not found", ExitCode.NOT_FOUND) from None
        raise
    state = session.state
    if state.api_key_id == key_id:
        state.api_key = state.api_key_id = None
    if state.task_api_key_id == key_id:
        state.task_api_key = state.task_api_key_id = None
    state.save(session.state_path)
    if cli.output.as_json:
        cli.output.data({"id": key_id, "deleted": True})
    cli.output.say(f"deleted API key {key_id}")
