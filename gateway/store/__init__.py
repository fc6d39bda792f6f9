"""Control-plane persistence: SQL through SQLAlchemy Core (async), SQLite or PostgreSQL."""

from gateway.store.engine import Store, open_store

__all__ = ["Store", "open_store"]
