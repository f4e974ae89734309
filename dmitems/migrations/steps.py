"""The adoption's steps on each backend (see :mod:`dmitems.migrations.adoption`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dmitems.migrations.adoption import TIMESTAMPS, scratch

if TYPE_CHECKING:
    from dmitems.migrations.adoption import Plan

# Text that SQLite's date functions read (strftime gives NULL for the rest); a
# bare number would be read as a Julian day, hence the GLOB.
SQLITE_PARSED = (
    "CASE WHEN {c} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' "
    "THEN strftime('%Y-%m-%d %H:%M:%f', {c}) END"
)
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"

# What PostgreSQL's own timestamptz input accepts, NULL for the rest (words such as
# 'now' or 'epoch' too: only text that starts with a date counts).  pg_temp: the
# function lives in this session only and leaves nothing behind.
POSTGRESQL_PARSER = """CREATE OR REPLACE FUNCTION pg_temp.dmitems_timestamp(value text)
RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    IF value IS NULL OR value !~ '^\\s*\\d{4}-\\d{2}-\\d{2}' THEN
        RETURN NULL;
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$"""

DM_PARSED = (
    "CASE WHEN REGEXP_LIKE({c}, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[ T][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}') "
    "THEN TO_TIMESTAMP(REPLACE(SUBSTR({c}, 1, 19), 'T', ' '), 'YYYY-MM-DD HH24:MI:SS') END"
)


def _differs(plan: Plan, kind: str, column: str | None) -> bool:
    return any(
        difference.kind == kind and (difference.column or "").lower() == (column or "")
        for difference in plan.report.differences
    )


def _price_and_version(plan: Plan) -> None:
    from sqlalchemy import Column, Integer

    op, table = plan.op, plan.table
    if not plan.has("version"):
        op.add_column(
            table.name,
            Column("version", Integer, nullable=False, server_default="1"),
            schema=table.schema,
        )
    if _differs(plan, "nullable", "price"):
        op.alter_column(
            table.name, "price", nullable=False, existing_type=Integer(), schema=table.schema
        )
    if _differs(plan, "check", None):
        op.create_check_constraint(
            op.f(f"ck_{table.name}_price_non_negative"), table.name, "price >= 0",
            schema=table.schema,
        )


def sqlite_steps(plan: Plan) -> None:
    """Rewrite the text in place, add version, then rebuild the table in dmitems' shape."""
    from sqlalchemy import Column, Integer

    op, table = plan.op, plan.table
    plan.fill_prices()
    for column in TIMESTAMPS:
        if plan.is_text(column):
            parsed = SQLITE_PARSED.format(c=column)
            plan.note_upgrade_time(column, f"({parsed}) IS NULL")
            plan.execute(f"UPDATE {plan.quoted} SET {column} = COALESCE({parsed}, {SQLITE_NOW})")
    if not plan.has("version"):
        op.add_column(
            table.name,
            Column("version", Integer, nullable=False, server_default="1"),
            schema=table.schema,
        )
    # copy_from: the table as it now is, in dmitems' types, so batch mode neither
    # reflects nor CASTs; the rebuilt table has dmitems' NOT NULLs, defaults and CHECK.
    with op.batch_alter_table(
        table.name, schema=table.schema, copy_from=table, recreate="always"
    ):
        pass


def postgresql_steps(plan: Plan) -> None:
    """One transaction: parse the text with ALTER ... USING, then constraints and identity."""
    from sqlalchemy import BigInteger, DateTime

    from dmitems.models import utc_now

    op, table = plan.op, plan.table
    plan.execute("SET LOCAL timezone = 'UTC'")
    plan.fill_prices()
    if any(plan.is_text(column) for column in TIMESTAMPS):
        plan.execute(POSTGRESQL_PARSER)
    for column in TIMESTAMPS:
        if plan.is_text(column):
            parsed = f"pg_temp.dmitems_timestamp({column})"
            plan.note_upgrade_time(column, f"{parsed} IS NULL")
            op.alter_column(
                table.name, column, type_=DateTime(timezone=True), postgresql_using=parsed,
                schema=table.schema,
            )
            plan.execute(f"UPDATE {plan.quoted} SET {column} = now() WHERE {column} IS NULL")
        if plan.is_text(column) or _differs(plan, "default", column):
            op.alter_column(table.name, column, server_default=utc_now(), schema=table.schema)
        if plan.is_text(column) or _differs(plan, "nullable", column):
            op.alter_column(table.name, column, nullable=False, schema=table.schema)
    _price_and_version(plan)
    literal = plan.quoted.replace("'", "''")
    if _differs(plan, "identity", "id"):
        plan.execute(
            f"DO $$ DECLARE serial text := pg_get_serial_sequence('{literal}', 'id'); BEGIN "
            f"ALTER TABLE {plan.quoted} ALTER COLUMN id DROP DEFAULT; "
            "IF serial IS NOT NULL THEN EXECUTE 'DROP SEQUENCE ' || serial; END IF; END $$"
        )
    if plan.report.columns.get("id") == "INTEGER":
        op.alter_column(table.name, "id", type_=BigInteger(), schema=table.schema)
    if _differs(plan, "identity", "id"):
        plan.execute(
            f"ALTER TABLE {plan.quoted} ALTER COLUMN id "
            "ADD GENERATED BY DEFAULT AS IDENTITY (START WITH 1 INCREMENT BY 1)"
        )
        plan.execute(
            f"SELECT setval(pg_get_serial_sequence('{literal}', 'id'), "
            f"COALESCE(MAX(id), 0) + 1, false) FROM {plan.quoted}"
        )


def dm_steps(plan: Plan) -> None:
    """Oracle-style ALTERs, each guarded by the live shape so a re-run finishes the job."""
    from sqlalchemy import BigInteger, Column, DateTime, Integer

    from dmitems.models import utc_now

    op, table = plan.op, plan.table
    plan.fill_prices()
    for column in TIMESTAMPS:
        spare = scratch(column)
        text, half_done = plan.is_text(column), not plan.has(column) and plan.has(spare)
        if text:
            if not plan.has(spare):
                op.add_column(
                    table.name, Column(spare, DateTime(timezone=True)), schema=table.schema
                )
            parsed = DM_PARSED.format(c=column)
            plan.execute(f"UPDATE {plan.quoted} SET {spare} = {parsed} WHERE {spare} IS NULL")
            plan.note_upgrade_time(column, f"{spare} IS NULL")
            plan.execute(
                f"UPDATE {plan.quoted} SET {spare} = CURRENT_TIMESTAMP WHERE {spare} IS NULL"
            )
            op.drop_column(table.name, column, schema=table.schema)
        if text or half_done:
            op.alter_column(table.name, spare, new_column_name=column, schema=table.schema)
        if text or half_done or _differs(plan, "default", column):
            op.alter_column(table.name, column, server_default=utc_now(), schema=table.schema)
        if text or half_done or _differs(plan, "nullable", column):
            op.alter_column(table.name, column, nullable=False, schema=table.schema)
    _price_and_version(plan)
    if plan.report.columns.get("id") == "INTEGER":
        op.alter_column(
            table.name, "id", type_=BigInteger(), existing_type=Integer(), schema=table.schema
        )
