"""Alembic's entry point for dmitems' revisions; the logic is in :mod:`dmitems.migrations.environment`."""

from alembic import context

from dmitems.migrations.environment import run

run(context)
