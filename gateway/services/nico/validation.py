"""Request-body checks with NICo's answer: every failing field in ``data``, nothing written."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from starlette.requests import Request

from gateway.services.nico.errors import BadRequest, Invalid, PayloadTooLarge

NAME_MIN, NAME_MAX = 2, 256
DESCRIPTION_MAX = 1024
MAX_LABELS = 10


async def read_body(request: Request, limit: int, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > limit:
        raise PayloadTooLarge("Request body is too large")
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("Request body is required")
    if b"\\u0000" in raw:
        # PostgreSQL text cannot hold NUL: refused here rather than failing in the store.
        raise BadRequest("Request data must not contain NUL characters")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Failed to parse request data, potentially malformed JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("Failed to parse request data, a JSON object is expected")
    return body


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class Fields:
    """Reads typed fields out of a JSON object, collecting an error per bad field."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.errors: dict[str, str] = {}

    def present(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        min_len: int | None = None,
        max_len: int | None = None,
        pattern: str | None = None,
    ) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors[key] = "cannot be blank"
            return None
        if not isinstance(value, str):
            self.errors[key] = "must be a string"
            return None
        if required and not value.strip():
            self.errors[key] = "cannot be blank"
            return None
        if (min_len is not None and len(value) < min_len) or (max_len is not None and len(value) > max_len):
            self.errors[key] = f"the length must be between {min_len or 0} and {max_len}"
            return None
        if pattern is not None and not re.fullmatch(pattern, value):
            self.errors[key] = "must be in a valid format"
            return None
        return value

    def name(self, key: str = "name", *, required: bool = True) -> str | None:
        value = self.string(key, required=required, min_len=NAME_MIN, max_len=NAME_MAX)
        if value is not None and value != value.strip():
            self.errors[key] = "must not have leading or trailing whitespace"
            return None
        return value

    def description(self, key: str = "description") -> str | None:
        return self.string(key, max_len=DESCRIPTION_MAX)

    def uuid(self, key: str, *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors[key] = "cannot be blank"
            return None
        if not is_uuid(value):
            self.errors[key] = "must be a valid UUID"
            return None
        return str(value).lower()

    def integer(self, key: str, *, required: bool = False, lo: int | None = None, hi: int | None = None) -> int | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors[key] = "cannot be blank"
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.errors[key] = "must be an integer"
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.errors[key] = f"must be between {lo} and {hi}"
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.errors[key] = "must be a boolean"
            return None
        return value

    def enum(self, key: str, values: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors[key] = "cannot be blank"
            return None
        if value not in values:
            self.errors[key] = f"must be one of {', '.join(values)}"
            return None
        return str(value)

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.errors[key] = "must be an object"
            return None
        return value

    def labels(self, key: str = "labels") -> dict[str, str] | None:
        value = self.mapping(key)
        if value is None:
            return None
        if len(value) > MAX_LABELS or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self.errors[key] = f"must map at most {MAX_LABELS} string keys to string values"
            return None
        return dict(value)

    def array(self, key: str, *, required: bool = False) -> list[Any] | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                self.errors[key] = "cannot be blank"
            return None
        if not isinstance(value, list):
            self.errors[key] = "must be an array"
            return None
        return value

    def check(self, what: str = "request") -> None:
        if self.errors:
            raise Invalid(self.errors, what)
