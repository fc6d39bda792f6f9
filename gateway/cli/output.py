"""How commands print: rich tables for people, JSON on stdout for scripts (``--json``), errors as
one line on stderr, and live status lines (deploy waits, invocation progress) on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

# Without a terminal (pipes, CI) rich would fold tables at 80 columns and split the ids.
_PIPE_WIDTH = 240


def _console(stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Output:
    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    def data(self, value: Any) -> None:
        """The JSON form of a result (stdout, one document)."""
        sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], raw: Any = None) -> None:
        """``columns``: (field, heading) pairs. ``--json`` prints ``raw`` (default: the rows)."""
        if self.as_json:
            self.data(list(rows) if raw is None else raw)
            return
        table = Table(show_edge=False, header_style="bold")
        for _, heading in columns:
            table.add_column(heading, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(name)) for name, _ in columns))
        self.out.print(table)
        if not rows:
            self.out.print("(none)")

    def record(self, value: Mapping[str, Any], fields: Sequence[tuple[str, str]], raw: Any = None) -> None:
        """One object as a two-column table (field, value)."""
        if self.as_json:
            self.data(dict(value) if raw is None else raw)
            return
        table = Table(show_header=False, show_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, heading in fields:
            if value.get(name) is not None:
                table.add_row(heading, _cell(value.get(name)))
        self.out.print(table)

    def say(self, text: str) -> None:
        """A human line (stdout), left out with ``--json``."""
        if not self.as_json:
            self.out.print(text, markup=False)

    def note(self, text: str) -> None:
        """A side note on stderr (kept with ``--json``: stdout stays one document)."""
        self.err.print(text, markup=False)

    @contextmanager
    def status(self, text: str) -> Iterator[StatusLine]:
        line = StatusLine(self.err, text)
        try:
            yield line
        finally:
            line.stop()


class StatusLine:
    """A live, rewritten line on a terminal; elsewhere one line per change (logs stay readable)."""

    def __init__(self, console: Console, text: str) -> None:
        self._console = console
        self._last = ""
        self._live = console.status(text) if console.is_terminal else None
        if self._live is not None:
            self._live.start()
        else:
            self.update(text)

    def update(self, text: str) -> None:
        if self._live is not None:
            self._live.update(text)
        elif text != self._last:
            self._console.print(text, markup=False)
        self._last = text

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def fail_line(text: str) -> None:
    """The one-line error every failing command ends with."""
    sys.stderr.write(f"cfgate: error: {text}\n")
    sys.stderr.flush()
