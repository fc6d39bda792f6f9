"""Selects the hot-path implementation: the compiled ``cext.hotpath_c`` or its twin ``cext.hotpath_py``.

``CFGATE_NO_EXTENSIONS`` (non-empty and not ``"0"``) forces the pure-Python twin. It is read here
only, once, at import. Otherwise the compiled module is imported, falling back to the twin if the
import fails (``IMPORT_ERROR`` then says why). Both implementations have the same public API and
identical results; ``IMPLEMENTATION`` tells which one the names exported here come from.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from cext import hotpath_py

__all__ = [
    "BEARER_MALFORMED",
    "BEARER_MISSING",
    "BEARER_OK",
    "DECIDE_BAD_BEARER",
    "DECIDE_BAD_ID",
    "DECIDE_CACHE_MISS",
    "DECIDE_FORBIDDEN",
    "DECIDE_NOT_HOT",
    "DECIDE_NO_BEARER",
    "DECIDE_OK",
    "DECIDE_UNKNOWN_HOST",
    "EXTENSIONS_REQUESTED",
    "IMPLEMENTATION",
    "IMPORT_ERROR",
    "KIND_API_KEY",
    "KIND_JWT",
    "MAX_AUTHORITIES",
    "MAX_TOKEN_BYTES",
    "MEMO_MAX_DEFAULT",
    "ROUTE_BAD_ID",
    "ROUTE_EXEC",
    "ROUTE_EXEC_STATUS",
    "ROUTE_EXEC_VERSION",
    "ROUTE_NONE",
    "ROUTE_PEXEC",
    "ROUTE_PEXEC_STATUS",
    "ROUTE_PEXEC_VERSION",
    "SERVICE_API",
    "SERVICE_API_KEYS",
    "SERVICE_FUNCTION",
    "SERVICE_INVOCATION",
    "SERVICE_LLM",
    "SERVICE_NICO",
    "SERVICE_SIS",
    "SERVICE_TASKS",
    "SERVICE_UNKNOWN",
    "AuthorityTable",
    "CredentialCache",
    "Decision",
    "extract_bearer",
    "HostClassifier",
    "HotPath",
    "hotpath_c",
    "hotpath_py",
    "match_invocation_path",
    "Principal",
]

EXTENSIONS_REQUESTED: bool = os.environ.get("CFGATE_NO_EXTENSIONS", "") in ("", "0")
"""False when ``CFGATE_NO_EXTENSIONS`` asked for the pure-Python twin."""

IMPORT_ERROR: str | None = None
"""Why ``cext.hotpath_c`` could not be imported although extensions were requested (else None)."""

hotpath_c: ModuleType | None = None
if EXTENSIONS_REQUESTED:
    try:
        from cext import hotpath_c as _compiled
    except ImportError as exc:
        IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
    else:
        hotpath_c = _compiled

IMPLEMENTATION: Literal["c", "py"] = "py" if hotpath_c is None else "c"
_selected: ModuleType = hotpath_py if hotpath_c is None else hotpath_c

if TYPE_CHECKING:
    # typed as the twin; at run time the same names come from the selected implementation
    from cext.hotpath_py import (
        BEARER_MALFORMED,
        BEARER_MISSING,
        BEARER_OK,
        DECIDE_BAD_BEARER,
        DECIDE_BAD_ID,
        DECIDE_CACHE_MISS,
        DECIDE_FORBIDDEN,
        DECIDE_NO_BEARER,
        DECIDE_NOT_HOT,
        DECIDE_OK,
        DECIDE_UNKNOWN_HOST,
        KIND_API_KEY,
        KIND_JWT,
        MAX_AUTHORITIES,
        MAX_TOKEN_BYTES,
        MEMO_MAX_DEFAULT,
        ROUTE_BAD_ID,
        ROUTE_EXEC,
        ROUTE_EXEC_STATUS,
        ROUTE_EXEC_VERSION,
        ROUTE_NONE,
        ROUTE_PEXEC,
        ROUTE_PEXEC_STATUS,
        ROUTE_PEXEC_VERSION,
        SERVICE_API,
        SERVICE_API_KEYS,
        SERVICE_FUNCTION,
        SERVICE_INVOCATION,
        SERVICE_LLM,
        SERVICE_NICO,
        SERVICE_SIS,
        SERVICE_TASKS,
        SERVICE_UNKNOWN,
        AuthorityTable,
        CredentialCache,
        Decision,
        HostClassifier,
        HotPath,
        Principal,
        extract_bearer,
        match_invocation_path,
    )
else:
    globals().update({name: getattr(_selected, name) for name in hotpath_py.__all__})
