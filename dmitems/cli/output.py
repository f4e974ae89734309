"""Printing, and turning errors into one line on stderr plus an exit code.

This is the only module that decides how dmitems talks to a terminal.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperGroup

from dmitems.errors import DmitemsError, redact

if TYPE_CHECKING:
    from rich.console import Console

    from dmitems.cli.state import CliState

_consoles: dict[bool, Console] = {}


def console(stderr: bool = False) -> Console:
    if stderr not in _consoles:
        from rich.console import Console

        _consoles[stderr] = Console(stderr=stderr, highlight=False)
    return _consoles[stderr]


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping), so scripts can parse it."""
    import orjson

    sys.stdout.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )
    sys.stdout.flush()


def info(message: str) -> None:
    """A status line for people, on stderr so stdout stays clean for data."""
    console(stderr=True).print(message)


def success(message: str) -> None:
    console().print(f"[green]{message}[/green]")


def warn(message: str) -> None:
    console(stderr=True).print(f"[yellow]warning:[/yellow] {_escape(message)}", soft_wrap=True)


def error_line(message: str) -> None:
    # One line, whatever the terminal width: soft_wrap stops rich from folding it.
    console(stderr=True).print(f"[bold red]error:[/bold red] {message}", soft_wrap=True)


def fail(message: str, code: int) -> NoReturn:
    error_line(_escape(message))
    raise typer.Exit(code)


def _escape(message: str) -> str:
    from rich.markup import escape

    return escape(" ".join(message.split()))


def _class_names(exc: Exception) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_help_request(exc: Exception) -> bool:
    # A group called without a command raises this; its job is to print the help.
    return "NoArgsIsHelpError" in _class_names(exc)


def _is_usage_error(exc: Exception) -> bool:
    # Newer Typer vendors Click, so Click's UsageError is not importable from one
    # stable place; recognise it by name.
    return "UsageError" in _class_names(exc) and not _is_help_request(exc)


def _usage_failure(exc: Exception) -> NoReturn:
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "dmitems"
    fail(f"{exc.format_message()} (see `{command} --help`)", 2)  # type: ignore[attr-defined]


def _state(ctx: typer.Context) -> CliState | None:
    from dmitems.cli.state import CliState

    root = ctx.find_root()
    return root.obj if isinstance(root.obj, CliState) else None


class DmitemsGroup(TyperGroup):
    """A Typer group that ends every error in one safe line and a documented exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        # Options of the group itself are parsed here, outside invoke().
        try:
            return super().make_context(*args, **kwargs)
        except Exception as exc:
            if _is_usage_error(exc):
                _usage_failure(exc)
            raise

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except DmitemsError as exc:
            state = _state(ctx)
            _traceback_if_debug(state)
            fail(state.redact(exc.message) if state else exc.message, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if _is_help_request(exc):
                raise
            if _is_usage_error(exc):
                _usage_failure(exc)
            state = _state(ctx)
            _traceback_if_debug(state)
            # A SQLAlchemy error's text carries the SQL and its parameters: show the driver's.
            cause = getattr(exc, "orig", None) or exc
            text = " ".join(str(cause).split())[:200]
            secrets = state.secrets() if state else []
            fail(
                f"unexpected {type(cause).__name__}: {redact(text, secrets)} "
                "(rerun with --debug for the traceback)",
                1,
            )


def debug_logging(state: CliState) -> None:
    """--debug: debug logs on stderr, every line with the run's secrets masked."""
    import logging

    class Redacting(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return state.redact(super().format(record))

    handler = logging.StreamHandler()
    handler.setFormatter(Redacting("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])


def _traceback_if_debug(state: CliState | None) -> None:
    """Under --debug, the traceback of the error being handled, secrets masked.

    The exit code stays the documented one: --debug adds information, it does not
    turn every failure into exit 1.
    """
    if state is None or not state.debug:
        return
    import traceback

    sys.stderr.write(state.redact(traceback.format_exc()))
    sys.stderr.flush()
