"""An Alembic implementation for the ``dm`` dialect (Dameng DM8).

Alembic ships none.  DM speaks Oracle's ``ALTER TABLE``: ``ADD <column>``,
``MODIFY <column> <type>|NULL|NOT NULL|DEFAULT ...``, ``RENAME COLUMN a TO b``,
``DROP COLUMN``.  Alembic picks an implementation by dialect name: defining a
:class:`~alembic.ddl.impl.DefaultImpl` subclass with ``__dialect__ = "dm"``
registers it (that is Alembic's documented extension point), and the DDL
elements get ``dm`` compilers here.  Where the Oracle form is right for DM the
compiler functions of ``alembic.ddl.oracle`` are registered for ``dm`` too;
nothing of Alembic or of the dialect is modified.

Unlike Alembic's Oracle implementation this one keeps ``;`` as the statement
terminator in offline SQL (DM's ``disql`` runs scripts terminated by ``;``)
and does not send ``SET TRANSACTION READ WRITE`` (DM does not need it).

DM commits DDL on its own (``transactional_ddl = False``): a failure half-way
through a revision leaves the steps before it in place.  The revisions are
written so that running them again finishes the job (see
:mod:`dmitems.migrations.adoption`).
"""

from __future__ import annotations

from typing import Any

from alembic.ddl import oracle
from alembic.ddl.base import AddColumn, ColumnDefault, ColumnName, ColumnNullable, ColumnType
from alembic.ddl.impl import DefaultImpl
from sqlalchemy.ext.compiler import compiles

DIALECT = "dm"


class DMImpl(DefaultImpl):
    """Alembic's operations on DM8."""

    __dialect__ = DIALECT
    transactional_ddl = False

    def version_table_impl(
        self,
        *,
        version_table: str,
        version_table_schema: str | None,
        version_table_pk: bool,
        **kw: Any,
    ) -> Any:
        """Alembic's version table, without implicit RETURNING.

        Alembic inserts the version as a SQL literal; for a primary key given as
        SQL the dialect would fetch it back with ``RETURNING ... INTO`` (an
        out-bind on the event loop thread under dmAsync, and an unbindable
        ``INTO :ret_0`` in a dry-run script).  Nobody reads it back.
        """
        from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

        table = Table(
            version_table,
            MetaData(),
            Column("version_num", String(32), nullable=False),
            schema=version_table_schema,
            implicit_returning=False,
        )
        if version_table_pk:
            table.append_constraint(
                PrimaryKeyConstraint("version_num", name=f"{version_table}_pkc")
            )
        return table


for element, visit in (
    (AddColumn, oracle.visit_add_column),
    (ColumnNullable, oracle.visit_column_nullable),
    (ColumnType, oracle.visit_column_type),
    (ColumnName, oracle.visit_column_name),
    (ColumnDefault, oracle.visit_column_default),
):
    compiles(element, DIALECT)(visit)
