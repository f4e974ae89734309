"""Alembic revisions of the items table (loaded by Alembic, not imported)."""
