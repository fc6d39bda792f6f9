"""Pydantic validation errors → one 400 whose detail names the field, the value and the rule."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gateway.problems import BadRequest


def _field(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "body"


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def bad_request(exc: ValidationError) -> BadRequest:
    """``Validation failed: [field=…, rejected=…, message=…]``, as NVCF's control plane words it."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        message = str(error.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        rejected = _shown(error.get("input")) if error.get("type") != "missing" else "null"
        parts.append(f"[field={_field(tuple(error.get('loc', ())))}, rejected={rejected}, message={message}]")
    return BadRequest("Validation failed: " + ", ".join(parts))
