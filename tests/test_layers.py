"""What import-linter cannot see: nothing below the CLI prints. Only the entry points
(the CLI, devmsg-sendmail) write to stdout or stderr; the library returns and raises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only  # no store: once is enough

PACKAGE = Path(__file__).resolve().parent.parent / "devmsg"
ENTRY_POINTS = {"cli", "sendmail.py", "__main__.py"}


def library_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] not in ENTRY_POINTS:
            yield path


def writes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            found.append(f"print() at line {node.lineno}")
        if (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
                and isinstance(node.value, ast.Name) and node.value.id == "sys"):  # fmt: skip
            found.append(f"sys.{node.attr} at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", list(library_modules()), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_below_the_cli_prints(path):
    tree = ast.parse(path.read_text(), str(path))
    # The package docstring's example prints; code does not.
    body = tree.body[1:] if path.name == "__init__.py" and ast.get_docstring(tree) else tree.body
    assert writes(ast.Module(body=body, type_ignores=[])) == []


def test_the_check_finds_a_print():
    assert writes(ast.parse("import sys\nprint(1)\nsys.stderr.write('x')")) == [
        "print() at line 2", "sys.stderr at line 3",
    ]  # fmt: skip
