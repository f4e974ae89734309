"""dmitems: items admin, REST server and sync-vs-async benchmark for SQLAlchemy on DM8, SQLite and PostgreSQL."""

__version__ = "0.1.0"
