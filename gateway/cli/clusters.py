"""``cfgate cluster register|list|get|delete`` (SIS; admin token, scope ``cluster-management``)."""

from __future__ import annotations

from typing import Any

import click

from gateway.cli.context import CliContext, json_option, pass_cli
from gateway.cli.inputs import pairs
from gateway.client import ApiError

CLUSTER_COLUMNS = [
    ("clusterId", "cluster id"),
    ("clusterName", "name"),
    ("clusterGroupName", "group"),
    ("region", "region"),
    ("nvcaVersion", "nvca"),
]


def _gpus(items: tuple[str, ...]) -> list[dict[str, Any]]:
    """``--gpu H100=NCP.GPU.H100_1x`` (repeatable; several instance types of a GPU collect)."""
    offers: dict[str, list[dict[str, Any]]] = {}
    for gpu, instance_type in pairs(items, "--gpu"):
        types = offers.setdefault(gpu, [])
        types.append({"name": instance_type, "default": not types})
    return [{"name": gpu, "instanceTypes": types} for gpu, types in offers.items()]


@click.group("cluster")
def cluster_group() -> None:
    """GPU clusters (SIS) and their worker credentials."""


@cluster_group.command("register")
@click.option("--name", required=True, help="clusterName.")
@click.option("--group", "group_name", help="clusterGroupName (default: the name).")
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--cloud-provider", default="ON-PREM", show_default=True)
@click.option("--nvca-version", default="2.50.0", show_default=True)
@click.option("--gpu", multiple=True, metavar="GPU=INSTANCE_TYPE", help="GPU offered (repeatable).")
@click.option("--description")
@click.option("--ignore-existing", is_flag=True, help="A cluster of that name already registered is not an error.")
@json_option
@pass_cli
def register_cluster(
    cli: CliContext,
    name: str,
    group_name: str | None,
    region: str,
    cloud_provider: str,
    nvca_version: str,
    gpu: tuple[str, ...],
    description: str | None,
    ignore_existing: bool,
) -> None:
    """Register a cluster; prints its worker credential (nvcc-...) once."""
    session = cli.session
    body: dict[str, Any] = {
        "clusterName": name,
        "clusterGroupName": group_name or name,
        "ncaId": session.state.nca_id,
        "cloudProvider": cloud_provider,
        "region": region,
        "nvcaVersion": nvca_version,
    }
    if gpu:
        body["gpus"] = _gpus(gpu)
    if description:
        body["clusterDescription"] = description
    try:
        registered = session.admin().register_cluster(session.state.nca_id, body)
    except ApiError as exc:
        if ignore_existing and exc.status == 400 and "already exists" in exc.detail:
            cli.output.say(f"cluster {name} already exists")
            if cli.output.as_json:
                cli.output.data({"clusterName": name, "existing": True})
            return
        raise
    fields = [*CLUSTER_COLUMNS[:3], ("clusterGroupId", "group id"), ("clusterCredential", "worker credential")]
    cli.output.record(registered, fields)


@cluster_group.command("list")
@json_option
@pass_cli
def list_clusters(cli: CliContext) -> None:
    """The account's clusters."""
    session = cli.session
    cli.output.table(session.admin().list_clusters(session.state.nca_id), CLUSTER_COLUMNS)


@cluster_group.command("get")
@click.argument("cluster_id")
@json_option
@pass_cli
def get_cluster(cli: CliContext, cluster_id: str) -> None:
    """Show a cluster."""
    session = cli.session
    fields = [*CLUSTER_COLUMNS, ("cloudProvider", "provider"), ("gpus", "gpus"), ("createdAt", "created")]
    cli.output.record(session.admin().get_cluster(session.state.nca_id, cluster_id), fields)


@cluster_group.command("delete")
@click.argument("cluster_id")
@json_option
@pass_cli
def delete_cluster(cli: CliContext, cluster_id: str) -> None:
    """Delete a cluster: its credential is revoked and its workers disconnected."""
    session = cli.session
    session.admin().delete_cluster(session.state.nca_id, cluster_id)
    if cli.output.as_json:
        cli.output.data({"clusterId": cluster_id, "deleted": True})
    cli.output.say(f"deleted cluster {cluster_id}")
