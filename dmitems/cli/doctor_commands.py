"""``dmitems doctor``: versions, DM defects, connectivity and sizing, as a report or JSON.

Exit codes: 0 when every check passes (warnings allowed); 3 when a check
fails -- the database cannot be reached or logged into, a DM driver defect is
present and unpatched, or the sizing cannot work (e.g. fewer DM executor
threads than pooled connections, more connections than PostgreSQL allows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from dmitems.cli.output import console, fail, print_json
from dmitems.cli.state import with_database

if TYPE_CHECKING:
    from dmitems.db import Database

_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}
_DEFECT_STYLE = {
    "fixed": "green",
    "avoided": "green",
    "absent": "dim",
    "advice": "yellow",
    "present": "bold red",
}


def doctor(
    ctx: typer.Context,
    concurrency: Annotated[
        Optional[int],
        typer.Option(
            "--concurrency",
            min=1,
            help="The concurrency you plan to run (e.g. bench --concurrency); checked "
            "against the pool and executor sizes.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check drivers, known DM8 defects, connectivity and pool/executor sizing.

    Exits 0 when all checks pass, 3 when one fails (see the report).

    Example: dmitems --url dm+dmAsync://SYSDBA@127.0.0.1:5236 doctor --concurrency 100
    """
    from dmitems.doctor import diagnose

    async def work(database: Database) -> dict[str, Any]:
        return await diagnose(database, concurrency)

    report = with_database(ctx, work)
    if as_json:
        print_json(report)
    else:
        _render(report)
    if not report["ok"]:
        failed = [check for check in report["checks"] if check["status"] == "fail"]
        summary = "; ".join(f"{check['name']}: {check['detail']}" for check in failed)
        fail(f"doctor found {len(failed)} problem(s): {summary}", report["exit_code"])


def _render(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"[bold]dmitems doctor[/bold]  {report['backend']}  {escape(report['url'])}")
    versions = report["versions"]
    drivers = ", ".join(f"{name} {version or 'missing'}" for name, version in versions["drivers"].items())
    out.print(
        f"Python {versions['python']} ({versions['platform']}), "
        f"SQLAlchemy {versions['sqlalchemy']}; {escape(drivers)}"
    )
    facts = {
        key: value
        for key, value in report["connectivity"].items()
        if key not in ("ok", "error") and value is not None
    }
    if facts:
        out.print("server: " + escape(", ".join(f"{key}={value}" for key, value in facts.items())))
    sizing = report["sizing"]
    out.print(
        "sizing: "
        + ", ".join(f"{key}={value}" for key, value in sizing.items() if value is not None)
    )
    if report.get("defects"):
        table = Table(title="known DM8 defects", title_justify="left")
        for column in ("defect", "status", "what dmitems does"):
            table.add_column(column, overflow="fold")
        for defect in report["defects"]:
            style = _DEFECT_STYLE.get(defect["status"], "")
            remedy = defect["remedy"] + (f" ({defect['detail']})" if defect["detail"] else "")
            table.add_row(
                escape(defect["title"]), f"[{style}]{defect['status']}[/]", escape(remedy)
            )
        out.print(table)
    checks = Table(title="checks", title_justify="left")
    checks.add_column("check")
    checks.add_column("result")
    checks.add_column("detail", overflow="fold")
    for check in report["checks"]:
        style = _STYLE.get(check["status"], "")
        checks.add_row(check["name"], f"[{style}]{check['status']}[/]", escape(check["detail"]))
    out.print(checks)
    verdict = "[green]all checks passed[/green]" if report["ok"] else "[bold red]problems found[/bold red]"
    out.print(verdict)
