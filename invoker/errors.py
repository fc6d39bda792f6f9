"""The invoker's exception root: errors the invocation layer raises to the gateway above it."""

from __future__ import annotations


class InvokerError(Exception):
    """Root of the invoker's errors."""


class QueueFull(InvokerError):
    """The version's queue holds as many invocations as it may (the gateway answers 429)."""


class BackendUnavailable(InvokerError):
    """Redis (queue, replies or stored results) cannot be reached right now (the gateway answers 503)."""


class WorkerRejected(InvokerError):
    """A worker's Register was refused (bad credential, unknown or undeployed function)."""

    def __init__(self, message: str, *, unauthenticated: bool = False) -> None:
        super().__init__(message)
        self.unauthenticated = unauthenticated
