"""Database errors for the metrics: SQLAlchemy's ``handle_error`` event sees every failed statement.

Only errors of the database itself count (unreachable, dropped connection, operational): an
integrity error from a duplicate name is the client's input, answered 409, not a store fault.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from invoker.metrics.backend import BACKEND_ERRORS


def _handle_error(context: ExceptionContext) -> None:
    error = context.sqlalchemy_exception
    if context.is_disconnect or isinstance(error, OperationalError | InterfaceError):
        BACKEND_ERRORS.database += 1


def count_database_errors(engine: AsyncEngine) -> None:
    if not event.contains(engine.sync_engine, "handle_error", _handle_error):
        event.listen(engine.sync_engine, "handle_error", _handle_error)
