"""The CLI as a whole: help everywhere, fast start, safe errors, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from dmitems import __version__
from tests.cli_runner import invoke

SECRET = "Sup3r-Secret-pw"


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        found.append(((*path, name), command))
        found.extend(_commands(command, (*path, name)))
    return found


def test_every_command_has_help_with_an_example() -> None:
    import typer

    from dmitems.cli import app

    commands = _commands(typer.main.get_command(app))
    names = {" ".join(path) for path, _ in commands}
    assert {"init-db", "item add", "item list", "config show", "serve", "doctor"} <= names
    for path, command in commands:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert command.help, path
        if not getattr(command, "commands", None):  # leaf commands show how to use them
            assert "Example" in result.stdout, path


def test_version_and_module_entry_point() -> None:
    assert invoke("--version").stdout.strip() == f"dmitems {__version__}"
    completed = subprocess.run(
        [sys.executable, "-m", "dmitems", "--version"], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == f"dmitems {__version__}"


def _modules_after(*args: str, cwd: Any = None) -> set[str]:
    """The modules a real ``dmitems ARGS`` process has imported when it exits (with 0)."""
    code = (
        "import sys\n"
        "from dmitems.cli import main\n"
        f"sys.argv = ['dmitems', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as stop:\n"
        "    if stop.code:\n"
        "        raise\n"
        "print('MODULES', ' '.join(sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
    )
    last = completed.stdout.splitlines()[-1]
    assert last.startswith("MODULES "), completed.stdout + completed.stderr
    return set(last.split()[1:])


def _packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


# Not needed to print help; each is imported by the command that uses it.
NOT_FOR_HELP = {
    "sqlalchemy", "pydantic", "pydantic_core", "pydantic_settings", "fastapi", "starlette",
    "uvicorn", "aiohttp", "httpx", "asyncpg", "psycopg", "dmPython", "aiosqlite",
    "hdrhistogram", "orjson", "asyncio",
}


@pytest.mark.parametrize(
    "args", [("--help",), ("item", "--help"), ("item", "list", "--help"), ("bench", "--help"),
             ("serve", "--help")]
)
def test_help_does_not_import_heavy_modules(args: tuple[str, ...]) -> None:
    imported = _packages(_modules_after(*args)) & NOT_FOR_HELP
    if args != ("--help",):
        # Typer itself converts a subcommand's option values with pydantic (typer._adapters).
        imported -= {"pydantic", "pydantic_core"}
    assert imported == set()


def test_item_list_imports_neither_the_orm_nor_the_server(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert invoke("--url", url, "init-db").exit_code == 0
    modules = _modules_after("--url", url, "item", "list", "--limit", "10", cwd=tmp_path)
    assert "sqlalchemy" in modules and "dmitems.repository" in modules  # it did run
    assert {"sqlalchemy.orm", "sqlalchemy.ext.asyncio"} & modules == set()
    assert _packages(modules) & {"fastapi", "uvicorn", "aiohttp", "httpx", "hdrhistogram"} == set()


def _assert_one_safe_line(result: Any, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr and SECRET not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


def test_unreachable_postgresql_names_the_masked_url() -> None:
    url = f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:9/app"
    result = invoke("--url", url, "item", "list")
    _assert_one_safe_line(result, 3, "unreachable", "app:***@127.0.0.1:9")


def test_unknown_scheme_says_what_is_supported() -> None:
    result = invoke("--url", f"oracle://scott:{SECRET}@h/orcl", "item", "add", "--name", "x", "--price", "1")
    _assert_one_safe_line(result, 3, "unsupported database URL scheme 'oracle'", "dm+dmAsync://")


def test_unparsable_url_is_masked() -> None:
    result = invoke("--url", f"::nonsense:{SECRET}@", "item", "list")
    _assert_one_safe_line(result, 3, "cannot parse the database URL")


def test_missing_table_tells_the_user_to_run_init_db(database_url: str) -> None:
    result = invoke("--url", database_url, "item", "list")
    _assert_one_safe_line(result, 3, "dmitems init-db")


@pytest.mark.postgres
def test_login_failure_is_exit_3_without_the_password(pg_url: str) -> None:
    from tests.postgres_server import PASSWORD

    wrong = pg_url.replace(PASSWORD, SECRET)
    result = invoke("--url", wrong, "init-db")
    _assert_one_safe_line(result, 3, "login failed")


@pytest.mark.postgres
def test_password_from_the_environment_is_used_and_never_shown(pg_url: str) -> None:
    from tests.postgres_server import PASSWORD

    without = pg_url.replace(f":{PASSWORD}@", "@")
    env = {"DMITEMS_DATABASE_PASSWORD": PASSWORD}
    result = invoke("--url", without, "init-db", env=env)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    shown = invoke("--url", without, "config", "show", "--json", env=env)
    assert PASSWORD not in shown.output


def test_debug_shows_the_traceback_and_keeps_the_exit_code() -> None:
    result = invoke("--debug", "--url", "oracle://h/x", "item", "list")
    assert result.exit_code == 3
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "UnsupportedDatabase: unsupported database URL scheme" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: unsupported database URL scheme")


def test_real_process_errors_are_one_line(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMITEMS_")}
    env["DMITEMS_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    completed = subprocess.run(
        [sys.executable, "-m", "dmitems", "item", "get", "1"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert completed.returncode == 3
    assert completed.stderr.count("\n") == 1 and "init-db" in completed.stderr


def test_unknown_global_option_is_one_line() -> None:
    result = invoke("--bogus")
    _assert_one_safe_line(result, 2, "--bogus")


def test_group_without_a_command_shows_its_help() -> None:
    result = invoke("item")
    # Click's plain help: on stderr, since the command did not run (exit 2).
    assert "Usage" in result.output and "add" in result.output
    assert "error" not in result.output
