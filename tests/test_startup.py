"""The start-up budget: what the commands a cron job and a new user run first may import,
and that devmsg's own modules import in one direction only. The timings themselves are in
benchmarks/startup.py; here, the imports that made them slow must not come back unseen."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import devmsg_command, run

PACKAGE = Path(__file__).resolve().parent.parent / "devmsg"

# command -> top-level packages it must not import (on SQLite, with psycopg installed)
BUDGET = {
    ("--version",): {"psycopg", "psycopg2", "peewee", "jinja2", "babel", "rich"},
    ("--help",): {"psycopg", "psycopg2", "peewee", "jinja2", "babel", "markdown_it",
                  "pygments"},
    ("resend-failed", "--quiet"): {"psycopg", "psycopg2", "jinja2", "babel", "rich",
                                   "email_validator"},
}  # fmt: skip


# Runs the installed `devmsg` script as it runs from a shell, then lists the modules that
# are really loaded: an import that failed (a driver kept out) leaves None, and a stand-in
# for a module not yet used (devmsg.cli's deferred rich modules) has no __spec__.
_PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: sys.stderr.write("\\nMODULES " + json.dumps(sorted(
    {name.split(".")[0] for name, module in sys.modules.items()
     if getattr(module, "__spec__", None) is not None}))))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _imported(args: tuple[str, ...], cwd: Path) -> tuple[int, set[str]]:
    """The exit code of a `devmsg` process, and the top-level packages it imported."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, devmsg_command(), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    _, _, listed = proc.stderr.rpartition("\nMODULES ")
    return proc.returncode, set(json.loads(listed))


@pytest.mark.sqlite_only
@pytest.mark.parametrize("args", list(BUDGET), ids=" ".join)
def test_the_first_commands_import_only_what_they_use(home, args):
    assert importlib.util.find_spec("psycopg"), "psycopg must be installed for this test"
    (home / "devmsg.toml").write_text('database = "devmsg.sqlite3"\n')
    assert run("resend-failed", cwd=home).returncode == 0  # a store that exists, nothing due
    code, imported = _imported(args, home)
    assert code == 0
    assert "typer" in imported  # it did look
    assert not imported & BUDGET[args], f"devmsg {' '.join(args)} imports {imported & BUDGET[args]}"


@pytest.mark.sqlite_only
def test_a_postgresql_store_still_gets_its_driver(home):
    """The driver is left out only where SQLite is what the config names."""
    (home / "devmsg.toml").write_text('database = "postgresql://nobody@127.0.0.1:1/none"\n')
    code, imported = _imported(("list",), home)
    assert code == 1  # no server there
    assert "psycopg" in imported


def _module_name(path: Path) -> str:
    return ".".join(("devmsg", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
        ".__init__"
    )


def _graph() -> dict[str, set[str]]:
    """module -> the devmsg modules it imports, anywhere in it (also inside functions)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph, as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_devmsg_has_no_import_cycle():
    """Data flows one way: no module imports, even lazily inside a function, one that
    imports it back (a module of a package importing the package counts too)."""
    graph = _graph()
    assert "devmsg.store.claims" in graph["devmsg.store"]  # it did read the imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
