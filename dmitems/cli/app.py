"""The root ``dmitems`` command, its global options, and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dmitems import __version__
from dmitems.cli import (
    bench_commands,
    bulk_commands,
    config_commands,
    database_commands,
    doctor_commands,
    item_commands,
    serve_commands,
)
from dmitems.cli.output import DmitemsGroup, debug_logging
from dmitems.cli.state import CliState

HELP = """\
Manage items, serve a REST API and benchmark sync vs async SQLAlchemy on DM8,
SQLite and PostgreSQL.

Examples:

  dmitems init-db

  dmitems item add --name 机械键盘 --price 199

  dmitems --url postgresql+asyncpg://app@127.0.0.1/app item list --json
"""

app = typer.Typer(
    cls=DmitemsGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dmitems {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        Optional[str],
        typer.Option(
            "--url",
            help="Database URL for this command, e.g. dm+dmAsync://SYSDBA@host:5236 "
            "(overrides config and DMITEMS_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="Config file (TOML). Default: $DMITEMS_CONFIG, then ./dmitems.toml.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = CliState(config_path=config, url=url, debug=debug)
    if debug:
        debug_logging(ctx.obj)


app.command("init-db")(database_commands.init_db)
app.add_typer(database_commands.app, name="db")
app.add_typer(item_commands.app, name="item")
bulk_commands.register(item_commands.app)
app.command("serve")(serve_commands.serve)
app.add_typer(bench_commands.app, name="bench")
app.command("doctor")(doctor_commands.doctor)
app.add_typer(config_commands.app, name="config")
