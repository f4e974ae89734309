"""``dmitems config show``."""

from __future__ import annotations

from typing import Annotated

import typer

from dmitems.cli.output import DmitemsGroup, console, print_json
from dmitems.cli.state import state_of

app = typer.Typer(cls=DmitemsGroup, help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print the effective settings and where each came from; secrets are masked.

    Example: DMITEMS_DATABASE_POOL_SIZE=40 dmitems config show
    """
    from dmitems.config import describe

    settings = state_of(ctx).settings()
    rows = describe(settings)
    if as_json:
        print_json(
            {
                "config_file": str(settings.config_file) if settings.config_file else None,
                "settings": rows,
            }
        )
        return
    from rich.table import Table

    table = Table(title="dmitems settings", title_justify="left")
    for column in ("section", "key", "value", "source", "environment variable"):
        table.add_column(column)
    for row in rows:
        value = "" if row["value"] is None else str(row["value"])
        source_style = "dim" if row["source"] == "default" else "bold"
        table.add_row(
            row["section"],
            row["key"],
            value,
            f"[{source_style}]{row['source']}[/]",
            row["env"],
        )
    out = console()
    out.print(table)
    where = settings.config_file or "none (looked for --config, $DMITEMS_CONFIG, ./dmitems.toml)"
    out.print(f"config file: {where}")
