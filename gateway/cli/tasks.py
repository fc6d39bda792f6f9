"""``cfgate task create|list|get|cancel|delete|events|results`` (task API key, NVCT scopes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gateway.cli.context import CliContext, json_option, pass_cli
from gateway.cli.inputs import json_file, pairs

TASK_COLUMNS = [("id", "task id"), ("name", "name"), ("status", "status"), ("percentComplete", "%")]
TASK_FIELDS = [
    *TASK_COLUMNS,
    ("gpuSpecification", "gpu"),
    ("containerImage", "image"),
    ("containerArgs", "args"),
    ("maxRuntimeDuration", "max runtime"),
    ("createdAt", "created"),
    ("lastUpdatedAt", "updated"),
]


@click.group("task")
def task_group() -> None:
    """NVCT tasks: long-running batch jobs on a task worker."""


@task_group.command("create")
@click.option("--input-file", type=click.Path(path_type=Path, dir_okay=False), help="CreateTaskRequest JSON.")
@click.option("--name")
@click.option("--image", help="containerImage.")
@click.option("--container-args", help="The command (exec launcher) or the container's arguments.")
@click.option("--gpu", help="gpuSpecification.gpu.")
@click.option("--instance-type", help="gpuSpecification.instanceType.")
@click.option("--env", multiple=True, metavar="KEY=VALUE", help="containerEnvironment entry (repeatable).")
@click.option("--max-runtime", help="maxRuntimeDuration, e.g. PT1H.")
@click.option("--description")
@json_option
@pass_cli
def create_task(cli: CliContext, /, input_file: Path | None, **options: Any) -> None:
    """Launch a task from --input-file and/or flags."""
    body: dict[str, Any] = json_file(input_file) if input_file else {}
    flags = {
        "name": options["name"],
        "containerImage": options["image"],
        "containerArgs": options["container_args"],
        "maxRuntimeDuration": options["max_runtime"],
        "description": options["description"],
    }
    body.update({k: v for k, v in flags.items() if v is not None})
    if options["gpu"] or options["instance_type"]:
        spec = dict(body.get("gpuSpecification") or {})
        spec.update({k: v for k, v in (("gpu", options["gpu"]), ("instanceType", options["instance_type"])) if v})
        body["gpuSpecification"] = spec
    if options["env"]:
        body["containerEnvironment"] = [{"key": k, "value": v} for k, v in pairs(options["env"], "--env")]
    for required, flag in (("name", "--name"), ("gpuSpecification", "--gpu/--instance-type")):
        if not body.get(required):
            raise click.UsageError(f"{flag} (or {required} in --input-file) is required")
    cli.output.record(cli.session.with_task_key().create_task(body), TASK_FIELDS)


@task_group.command("list")
@click.option("--status", help="Only tasks in this status (QUEUED, RUNNING, ...).")
@click.option("--limit", type=click.IntRange(1, 100), help="Page size (default 10).")
@json_option
@pass_cli
def list_tasks(cli: CliContext, status: str | None, limit: int | None) -> None:
    """List the account's tasks."""
    cli.output.table(cli.session.with_task_key().list_tasks(status, limit), TASK_COLUMNS)


@task_group.command("get")
@click.argument("task_id")
@json_option
@pass_cli
def get_task(cli: CliContext, task_id: str) -> None:
    """Show a task."""
    cli.output.record(cli.session.with_task_key().get_task(task_id), TASK_FIELDS)


@task_group.command("cancel")
@click.argument("task_id")
@json_option
@pass_cli
def cancel_task(cli: CliContext, task_id: str) -> None:
    """Cancel a queued or running task."""
    cli.output.record(cli.session.with_task_key().cancel_task(task_id), TASK_FIELDS)


@task_group.command("delete")
@click.argument("task_id")
@json_option
@pass_cli
def delete_task(cli: CliContext, task_id: str) -> None:
    """Delete a task (a running one is stopped first)."""
    cli.session.with_task_key().delete_task(task_id)
    if cli.output.as_json:
        cli.output.data({"id": task_id, "deleted": True})
    cli.output.say(f"deleted task {task_id}")


@task_group.command("events")
@click.argument("task_id")
@json_option
@pass_cli
def task_events(cli: CliContext, task_id: str) -> None:
    """A task's events."""
    columns = [("createdAt", "at"), ("message", "message")]
    cli.output.table(cli.session.with_task_key().task_events(task_id), columns)


@task_group.command("results")
@click.argument("task_id")
@json_option
@pass_cli
def task_results(cli: CliContext, task_id: str) -> None:
    """A task's results."""
    columns = [("resultId", "result id"), ("name", "name"), ("metadata", "metadata"), ("createdAt", "created")]
    cli.output.table(cli.session.with_task_key().task_results(task_id), columns)
