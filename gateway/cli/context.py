"""What every command gets: its ``Output`` and ``Session``, and the ``--json`` flag that any
command accepts (``cfgate --json function list`` and ``cfgate function list --json`` agree)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.cli.output import Output
from gateway.cli.session import Session
from gateway.cli.state import default_state_path

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    state_path: Path = field(default_factory=default_state_path)
    output: Output = field(default_factory=Output)
    _session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.state_path, self.output)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


pass_cli = click.make_pass_decorator(CliContext)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliContext).output.as_json = True


def json_option(command: F) -> F:
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_json,
        help="Print JSON on stdout (for scripts).",
    )(command)
