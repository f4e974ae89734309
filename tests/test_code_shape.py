"""The size rules from the README's contributor notes, kept by a test.

A module of ``dmitems`` stays under 400 lines and a function under 60, so that each
file has one job a newcomer can read in one sitting.  A test, not a review habit:
a split that is needed shows up in the change that needs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dmitems"
MODULE_LINES = 400
FUNCTION_LINES = 60
MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_where_the_test_expects_it() -> None:
    assert len(MODULES) > 30, MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_function_sizes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MODULE_LINES, f"{path.name}: split this module"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
    ]
    assert long == [], f"{path.name}: functions over {FUNCTION_LINES} lines: {long}"
