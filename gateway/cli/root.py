"""The ``cfgate`` command: the operator's commands and an nvcf-cli-shaped client.

``main(argv)`` returns the exit code (see ``gateway.cli.failures``); every failure ends as one
``cfgate: error: ...`` line on stderr, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from gateway.cli.context import CliContext, json_option
from gateway.cli.failures import CliFailure, ExitCode, from_client_error
from gateway.cli.operator import OPERATOR_COMMANDS, SIGINT_EXIT
from gateway.cli.output import fail_line
from gateway.cli.state import STATE_FILE_ENV, default_state_path
from gateway.client import ClientError


class _Sections(click.Group):
    """``cfgate --help`` in two groups: running cfgate, and using it (the client commands)."""

    OPERATOR = frozenset(c.name for c in OPERATOR_COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = [(n, self.get_command(ctx, n)) for n in self.list_commands(ctx)]
        for title, wanted in (("Run cfgate", True), ("Use a gateway (client)", False)):
            names = [n for n, c in listed if c and (n in self.OPERATOR) == wanted]
            width = max(45, formatter.width - 6 - max(map(len, names)))
            rows = [(n, c.get_short_help_str(width)) for n, c in listed if c and n in names]
            with formatter.section(title):
                formatter.write_dl(rows)


@click.group(cls=_Sections, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--state-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Client state (gateway, domain, credentials; 0600). Default ${STATE_FILE_ENV} or ~/.cfgate-cli.state.",
)
@json_option
@click.pass_context
def cli(ctx: click.Context, state_file: Path | None) -> None:
    """Self-hosted gateway and invocation router for GPU functions, compatible with self-hosted NVCF.

    Run a gateway with "cfgate serve" and attach workers with "cfgate worker"; then drive it from any
    machine like nvcf-cli: "cfgate init --gateway http://HOST:8080", "cfgate function create ...".

    \b
    Exit codes: 0 done, 1 refused by the gateway, 2 bad usage, 3 credentials (no state, 401/403),
    4 not found, 5 gateway unreachable, 6 timed out.
    """
    context = ctx.ensure_object(CliContext)
    context.state_path = state_file or default_state_path()
    ctx.call_on_close(context.close)


def _register() -> None:
    from gateway.cli.clusters import cluster_group
    from gateway.cli.credentials import api_key_group, init_command, token_command
    from gateway.cli.functions import function_group
    from gateway.cli.queues import queue_group
    from gateway.cli.tasks import task_group

    for command in (*OPERATOR_COMMANDS, init_command, token_command, api_key_group, function_group, queue_group):
        cli.add_command(command)
    cli.add_command(task_group)
    cli.add_command(cluster_group)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=arguments, prog_name="cfgate", standalone_mode=False, obj=CliContext())
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "cfgate"
        fail_line(f"{exc.format_message()} (see {where} --help)")
        return int(exc.exit_code)
    except click.ClickException as exc:
        fail_line(exc.format_message())
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        # Ctrl-C in a client command (click has ended the line already).
        return SIGINT_EXIT
    except CliFailure as exc:
        fail_line(str(exc))
        return int(exc.code)
    except ClientError as exc:
        failure = from_client_error(exc)
        fail_line(str(failure))
        return int(failure.code)
    return int(result) if isinstance(result, int) else ExitCode.OK
