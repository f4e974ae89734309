"""Alembic migrations of the items table, shipped with the package.

``versions/`` holds the revisions (0001 creates the table, 0002 adopts the
seed service's table); :mod:`.runner` decides what to do with a live database
and runs Alembic in-process; :mod:`.dm` gives Alembic an implementation for
DM8.  Alembic's version table is ``dmitems_alembic_version``.
"""

from dmitems.migrations.runner import (
    HEAD,
    Survey,
    apply,
    dry_run,
    ensure_created,
    offline_sql,
    survey,
)

__all__ = ["HEAD", "Survey", "apply", "dry_run", "ensure_created", "offline_sql", "survey"]
