"""Create the items table in dmitems' shape.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

The columns are written out here (a revision is a record of one shape, not a
view of today's model); ``tests/test_migrations.py`` checks that the table
this creates matches :mod:`dmitems.models` on every backend.  A table that
already exists is left alone: revision 0002 takes it from there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dmitems.migrations.environment import created, live_report, settings_table
from dmitems.models import utc_now

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = settings_table()
    if live_report().exists:
        return
    item_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        table.name,
        sa.Column("id", item_id, sa.Identity(start=1, increment=1), nullable=False, comment="商品ID"),
        sa.Column("name", sa.String(255), nullable=False, comment="商品名称"),
        sa.Column("description", sa.String(500), nullable=True, comment="商品描述"),
        sa.Column("price", sa.Integer(), nullable=False, comment="价格"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False,
            server_default=utc_now(), comment="创建时间",
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False,
            server_default=utc_now(), comment="更新时间",
        ),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1", comment="版本号（乐观锁）"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table.name}")),
        sa.CheckConstraint("price >= 0", name=op.f(f"ck_{table.name}_price_non_negative")),
        schema=table.schema,
        comment="商品表",
    )
    created()


def downgrade() -> None:
    table = settings_table()
    op.drop_table(table.name, schema=table.schema)
