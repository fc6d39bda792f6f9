"""Errors of the backing stores (Redis, the SQL database), counted where they are caught.

Process-wide counters (a module object, not per component): a Redis error is the same event for
the queue, the result store and the rate limiter, and the sites that see one are on cold paths.
"""

from __future__ import annotations


class BackendErrors:
    __slots__ = ("database", "redis")

    def __init__(self) -> None:
        self.redis = 0
        self.database = 0


BACKEND_ERRORS = BackendErrors()
