"""Persistence of the hub (SQLAlchemy 2.x; SQLite by default, PostgreSQL by URL)."""

from hub.store.engine import Store

__all__ = ["Store"]
