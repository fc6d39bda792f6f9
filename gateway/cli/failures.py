"""What a ``cfgate`` command can fail with, and the exit code each failure gives scripts.

| Code | Meaning |
|---|---|
| 0 | done |
| 1 | the gateway refused the request (4xx/5xx other than below), or the invocation answered an error |
| 2 | bad usage: unknown flag, missing argument, unreadable input file or JSON |
| 3 | credentials: no state file (run ``cfgate init``), no API key for the call, or 401/403 |
| 4 | not found (404): unknown function, version, key, task, cluster or request |
| 5 | the gateway is unreachable |
| 6 | timed out: ``--wait`` or ``--timeout`` ran out |
"""

from __future__ import annotations

from enum import IntEnum

from gateway.client import ApiError, ClientError, GatewayUnreachable


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CREDENTIALS = 3
    NOT_FOUND = 4
    UNREACHABLE = 5
    TIMED_OUT = 6


class CliFailure(Exception):
    """A failure the command reports as one line, with the exit code scripts rely on."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


def from_client_error(exc: ClientError) -> CliFailure:
    """One readable line for a client failure (a problem+json answer keeps its status and detail)."""
    if isinstance(exc, GatewayUnreachable):
        return CliFailure(f"gateway unreachable: {exc}", ExitCode.UNREACHABLE)
    if isinstance(exc, ApiError):
        code = {401: ExitCode.CREDENTIALS, 403: ExitCode.CREDENTIALS, 404: ExitCode.NOT_FOUND}.get(
            exc.status, ExitCode.FAILED
        )
        title = f" {exc.title}" if exc.title else ""
        detail = " ".join(exc.detail.split()) if exc.detail else ""
        return CliFailure(f"{exc.status}{title}" + (f": {detail}" if detail else ""), code)
    return CliFailure(str(exc))
