"""``dmitems serve``: the REST API under uvicorn."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from dmitems.cli.output import console, info
from dmitems.cli.state import state_of, with_database


def serve(
    ctx: typer.Context,
    host: Annotated[
        Optional[str],
        typer.Option(help="Address to bind (default 127.0.0.1; 0.0.0.0 exposes the server).",
                     show_default=False),
    ] = None,
    port: Annotated[
        Optional[int], typer.Option(help="TCP port (default 8000; 0 picks a free one).",
                                    show_default=False),
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="Worker processes (default 1).", show_default=False)
    ] = None,
    mode: Annotated[
        Optional[str],
        typer.Option(help="async: async handlers on the async engine; sync: def handlers on the "
                     "sync engine, in the thread pool.", show_default=False),
    ] = None,
    init_db: Annotated[
        bool, typer.Option("--init-db", help="Create the items table first if it is missing.")
    ] = False,
    access_log: Annotated[
        Optional[bool],
        typer.Option("--access-log/--no-access-log", help="Log one line per request.",
                     show_default=False),
    ] = None,
    api_key: Annotated[
        Optional[str],
        typer.Option(help="Require 'Authorization: Bearer KEY' on writes (prefer the "
                     "DMITEMS_API_KEY environment variable: flags show in ps).",
                     show_default=False),
    ] = None,
    protect_reads: Annotated[
        Optional[bool],
        typer.Option("--protect-reads/--open-reads", help="Require the API key on reads too.",
                     show_default=False),
    ] = None,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart on code changes (development only).")
    ] = False,
) -> None:
    """Serve the REST API (REST routes, the seed's routes, /health) until Ctrl-C or SIGTERM.

    Example: dmitems serve --port 8000 --workers 2 --init-db
    """
    settings = state_of(ctx).settings(
        server_host=host,
        server_port=port,
        server_workers=workers,
        server_mode=mode,
        server_access_log=access_log,
        api_key=api_key,
        server_protect_reads=protect_reads,
    )
    if init_db:
        from dmitems.db.schema import create_schema

        outcome = with_database(ctx, create_schema)
        if outcome["created"]:
            info(f"created table items in {outcome['url']}")

    from dmitems.api.server import run
    from dmitems.config import mask_url

    def announce(url: str) -> None:
        count = settings.server_workers
        console(stderr=True).print(
            f"serving {url} ({settings.server_mode} mode, {count} worker{'s' * (count > 1)}, "
            f"database {mask_url(settings.database_url)}"
            f"{', API key required for writes' if settings.api_key else ''}); Ctrl-C stops",
            soft_wrap=True,
            markup=False,
        )

    run(settings, reload=reload, announce=announce)
    info("stopped")
