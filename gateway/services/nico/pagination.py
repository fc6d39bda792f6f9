"""NICo list paging: ``pageNumber`` (≥1), ``pageSize`` (1–100, default 20), ``orderBy``
(``<FIELD>_ASC|_DESC``); the body is a bare array, the page in the ``X-Pagination`` header."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from gateway.services.nico.errors import BadRequest

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
ORDER_BY = re.compile(r"^([A-Z0-9_]+)_(ASC|DESC)$")
# orderBy field → key of the rendered object.
SORT_KEYS = {
    "name": "name",
    "status": "status",
    "created": "created",
    "updated": "updated",
    "description": "description",
    "prefix": "prefix",
    "id": "id",
}


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    size: int
    order_by: str | None
    key: str
    descending: bool

    def apply(self, items: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        ordered = sorted(items, key=lambda item: (str(item.get(self.key) or ""), item.get("id") or ""))
        if self.descending:
            ordered.reverse()
        start = (self.number - 1) * self.size
        header: dict[str, Any] = {"pageNumber": self.number, "pageSize": self.size, "total": len(items)}
        if self.order_by:
            header["orderBy"] = self.order_by
        return ordered[start : start + self.size], orjson.dumps(header).decode()


def _positive(request: Request, name: str, default: int, highest: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid value for {name} in query", {name: "must be an integer"}) from None
    if not 1 <= value <= highest:
        raise BadRequest(f"Invalid value for {name} in query", {name: f"must be between 1 and {highest}"})
    return value


def parse_page(request: Request, allowed: Sequence[str] = ("name", "status", "created", "updated")) -> Page:
    number = _positive(request, "pageNumber", 1, 1 << 31)
    size = _positive(request, "pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    order_by = request.query_params.get("orderBy")
    key, descending = "created", False
    if order_by is not None:
        match = ORDER_BY.match(order_by)
        field = match.group(1).lower() if match else ""
        if not match or field not in allowed or field not in SORT_KEYS:
            raise BadRequest(
                f"Invalid orderBy value in query, allowed fields: {', '.join(f.upper() for f in allowed)}",
                {"orderBy": "invalid value"},
            )
        key, descending = SORT_KEYS[field], match.group(2) == "DESC"
    return Page(number, size, order_by, key, descending)
