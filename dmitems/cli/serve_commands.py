"""``dmitems serve``: the REST API under uvicorn.

The command only reads its options into a :class:`ServeSpec` and hands it to
:func:`start`, which applies them over the settings and runs the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from dmitems.cli.output import console, info, warn
from dmitems.cli.state import state_of, with_database

if TYPE_CHECKING:
    from dmitems.config import Settings

Host = Annotated[
    Optional[str],
    typer.Option(help="Address to bind (default 127.0.0.1; 0.0.0.0 exposes the server).",
                 show_default=False),
]
Port = Annotated[
    Optional[int],
    typer.Option(help="TCP port (default 8000; 0 picks a free one).", show_default=False),
]
Workers = Annotated[
    Optional[int], typer.Option(help="Worker processes (default 1).", show_default=False)
]
Mode = Annotated[
    Optional[str],
    typer.Option(help="async: async handlers on the async engine; sync: def handlers on the "
                 "sync engine, in the thread pool.", show_default=False),
]
InitDb = Annotated[
    bool, typer.Option("--init-db", help="Create the items table first if it is missing.")
]
AccessLog = Annotated[
    Optional[bool],
    typer.Option("--access-log/--no-access-log", help="Log one line per request.",
                 show_default=False),
]
ApiKey = Annotated[
    Optional[str],
    typer.Option(help="Require 'Authorization: Bearer KEY' on writes (prefer the "
                 "DMITEMS_API_KEY environment variable: flags show in ps).", show_default=False),
]
ProtectReads = Annotated[
    Optional[bool],
    typer.Option("--protect-reads/--open-reads", help="Require the API key on reads too.",
                 show_default=False),
]
Reload = Annotated[
    bool, typer.Option("--reload", help="Restart on code changes (development only).")
]


@dataclass(frozen=True)
class ServeSpec:
    """What ``serve`` was asked for; None leaves the configured setting alone."""

    host: str | None = None
    port: int | None = None
    workers: int | None = None
    mode: str | None = None
    init_db: bool = False
    access_log: bool | None = None
    api_key: str | None = None
    protect_reads: bool | None = None
    reload: bool = False

    def flags(self) -> dict[str, object]:
        return {
            "server_host": self.host,
            "server_port": self.port,
            "server_workers": self.workers,
            "server_mode": self.mode,
            "server_access_log": self.access_log,
            "api_key": self.api_key,
            "server_protect_reads": self.protect_reads,
        }


def serve(
    ctx: typer.Context,
    host: Host = None,
    port: Port = None,
    workers: Workers = None,
    mode: Mode = None,
    init_db: InitDb = False,
    access_log: AccessLog = None,
    api_key: ApiKey = None,
    protect_reads: ProtectReads = None,
    reload: Reload = False,
) -> None:
    """Serve the REST API (REST routes, the seed's routes, /health) until Ctrl-C or SIGTERM.

    Example: dmitems serve --port 8000 --workers 2 --init-db
    """
    spec = ServeSpec(host=host, port=port, workers=workers, mode=mode, init_db=init_db,
                     access_log=access_log, api_key=api_key, protect_reads=protect_reads,
                     reload=reload)
    start(ctx, spec)


def start(ctx: typer.Context, spec: ServeSpec) -> None:
    settings = state_of(ctx).settings(**spec.flags())
    if spec.init_db:
        from dmitems.db.schema import create_schema

        outcome = with_database(ctx, create_schema)
        if outcome["created"]:
            info(f"created table {outcome['table']} in {outcome['url']}")
    if not settings.api_key and not is_loopback(settings.server_host):
        warn(
            f"serving on {settings.server_host} without an API key: anyone who can reach "
            "this address can change items (set DMITEMS_API_KEY)"
        )

    from dmitems.api.server import run

    run(settings, reload=spec.reload, announce=lambda url: announce(settings, url))
    info("stopped")


def announce(settings: Settings, url: str) -> None:
    from dmitems.config import mask_url

    count = settings.server_workers
    console(stderr=True).print(
        f"serving {url} ({settings.server_mode} mode, {count} worker{'s' * (count > 1)}, "
        f"database {mask_url(settings.database_url)}"
        f"{', API key required for writes' if settings.api_key else ''}); Ctrl-C stops",
        soft_wrap=True,
        markup=False,
    )


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
