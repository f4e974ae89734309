"""Take the seed service's items table to dmitems' shape.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

The seed service's ``Item`` model made ``price`` nullable, the timestamps
``VARCHAR(20)`` and no ``version``.  The steps depend on the live table and are
a no-op on a table revision 0001 created; see :mod:`dmitems.migrations.adoption`
for the data rules and what each backend sends.
"""

from __future__ import annotations

from alembic import op

from dmitems.migrations import adoption
from dmitems.migrations.environment import live_report, options, settings_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    adoption.run(op, settings_table(), live_report(), options())


def downgrade() -> None:
    # Going back would throw timestamps and versions away; restore a backup instead.
    raise NotImplementedError("revision 0002 cannot be undone; restore a backup taken before it")
