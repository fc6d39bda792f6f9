"""``cfgate queue status|position`` (function API key: scope ``queue_details``)."""

from __future__ import annotations

import click

from gateway.cli.context import CliContext, json_option, pass_cli


@click.group("queue")
def queue_group() -> None:
    """Queue depth of a function, position of a request."""


@queue_group.command("status")
@click.argument("function_id")
@click.argument("version_id", required=False)
@json_option
@pass_cli
def queue_status(cli: CliContext, function_id: str, version_id: str | None) -> None:
    """Queued invocations per version."""
    answer = cli.session.with_function_key().queue_status(function_id, version_id)
    columns = [
        ("functionVersionId", "version id"),
        ("functionName", "name"),
        ("functionStatus", "status"),
        ("queueDepth", "queue depth"),
    ]
    cli.output.table(answer.get("queues", []), columns, raw=answer)


@queue_group.command("position")
@click.argument("request_id")
@json_option
@pass_cli
def queue_position(cli: CliContext, request_id: str) -> None:
    """Where a pending request (one that answered 202) stands in its queue."""
    answer = cli.session.with_function_key().queue_position(request_id)
    fields = [("functionId", "function id"), ("functionVersionId", "version id"), ("positionInQueue", "position")]
    cli.output.record(answer, fields)
