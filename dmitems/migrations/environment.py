"""What ``env.py`` does, and what the revisions ask of their environment.

The command (:mod:`dmitems.migrations.runner`) builds an Alembic ``Config``
in memory and puts in ``config.attributes``:

* ``table``: the items table as the settings name it (``[database] schema``
  and ``table``);
* ``connection``: the open connection (online), or ``dialect`` (offline,
  ``--dry-run``), plus ``report``: the live table as the command read it, so
  the offline SQL is what the online run would send;
* ``fill_price`` and ``summary`` (the upgrade's counts are written there).

Alembic's version table is ``dmitems_alembic_version``, in the items table's
schema, so it never meets the version table of the user's own application.
"""

from __future__ import annotations

from typing import Any

VERSION_TABLE = "dmitems_alembic_version"


def _attributes() -> dict[str, Any]:
    from alembic import context

    return context.config.attributes  # type: ignore[no-any-return]


def run(context: Any) -> None:
    import dmitems.migrations.dm  # noqa: F401 - registers Alembic's implementation for DM

    attributes = context.config.attributes
    table = attributes["table"]
    common = {
        "version_table": VERSION_TABLE,
        "version_table_schema": table.schema,
        "target_metadata": table.metadata,
    }
    if context.is_offline_mode():
        context.configure(
            dialect_name=attributes["dialect"].name,
            literal_binds=True,
            output_buffer=attributes["output"],
            **common,
        )
        # The offline dialect is a fresh instance: give it the live one's DDL settings
        # (DM with LENGTH_IN_CHAR=0 sizes strings in bytes, see dmitems.db.dm).
        factor = getattr(attributes["dialect"], "dmitems_bytes_per_char", None)
        if factor:
            context.get_context().dialect.dmitems_bytes_per_char = factor
    else:
        context.configure(connection=attributes["connection"], **common)
    with context.begin_transaction():
        context.run_migrations()


def settings_table() -> Any:
    return _attributes()["table"]


def live_report() -> Any:
    """The live table now (online), or as the command read it before a dry run."""
    from alembic import context, op

    from dmitems.db.schema import TableReport, compare_table

    attributes = _attributes()
    if context.is_offline_mode():
        return attributes["report"]
    if attributes.get("created"):  # by revision 0001 in this run: dmitems' shape by construction
        return TableReport(settings_table().name, True)

    return compare_table(op.get_bind(), settings_table())


def created() -> None:
    """Revision 0001 made the table in this run (later revisions need not inspect it)."""
    _attributes()["created"] = True


def options() -> dict[str, Any]:
    from alembic import context

    attributes = _attributes()
    return {
        "online": not context.is_offline_mode(),
        "fill_price": attributes.get("fill_price"),
        "summary": attributes.setdefault("summary", {}),
    }
