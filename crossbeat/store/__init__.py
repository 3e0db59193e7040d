"""The incident store: SQLite (embedded default) or PostgreSQL + PostGIS, by URL."""

from crossbeat.store.base import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
