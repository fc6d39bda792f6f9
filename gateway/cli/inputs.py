"""Reading what users give commands: JSON bodies (inline, ``@file`` or ``--input-file``), and
``KEY=VALUE`` pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def json_file(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--input-file") from None
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint="--input-file") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{path} must hold a JSON object", param_hint="--input-file")
    return value


def json_argument(text: str, hint: str) -> Any:
    """Inline JSON, or ``@path`` for a file's JSON."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {text[1:]}: {exc.strerror}", param_hint=hint) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=hint) from None


def pairs(items: tuple[str, ...], hint: str) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=hint)
        out.append((key.strip(), value))
    return out
