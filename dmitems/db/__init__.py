"""Engines for SQLite, PostgreSQL and DM8, sync and async, from one URL."""

from dmitems.db.engines import Database, backend_for, parse_url

__all__ = ["Database", "backend_for", "parse_url"]
