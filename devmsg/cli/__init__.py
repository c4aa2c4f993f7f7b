"""The `devmsg` command: parse, call one library function, render. The only package that prints.

Errors devmsg raises (DevmsgError) become one red line on stderr, in one place:
`DevmsgGroup.invoke`. Exit codes: 0 done; 1 an input that is there but wrong, or an error
the user can fix; 2 usage: a required input missing, or options that cannot go together
(Typer's own and devmsg's UsageError); 3 the work was stored but some receivers were not
sent.

One module per group of commands: `sending` (send, resend, resend-failed), `worker`,
`inspect` (list, show, stats), `queue` (hold, release, cancel, pause, resume), `providers`
(limits, suppress), `bounces` (bounces ingest), `authoring` (catalog, check, preview), `admin`
(purge, demo, store). `base` holds the app and the helpers they share.
"""

from __future__ import annotations

import sys
from typing import Any

from devmsg.cli import admin, authoring, bounces, inspect, providers, queue, sending, worker  # noqa: F401  (they register commands)
from devmsg.cli.base import app
from devmsg.errors import DevmsgError

__all__ = ["app", "run"]

# `devmsg --help` groups the commands by task, in this order.
PANELS = {
    "Sending": ("send", "resend", "resend-failed", "worker"),
    "Looking": ("list", "show", "stats"),
    "Operating": ("hold", "release", "cancel", "pause", "resume", "limits", "suppress", "bounces"),
    "Authoring": ("check", "preview", "catalog"),
    "The store": ("purge", "store"),
    "Demo": ("demo",),
}
_ORDER = [name for names in PANELS.values() for name in names]
_PANEL = {name: panel for panel, names in PANELS.items() for name in names}


def _name(info: Any) -> str:
    callback = getattr(info, "callback", None)
    return info.name or (callback.__name__.replace("_", "-") if callback else "")


for _info in (*app.registered_commands, *app.registered_groups):
    _info.rich_help_panel = _PANEL[_name(_info)]  # type: ignore[attr-defined]  # both kinds have it
app.registered_commands.sort(key=lambda info: _ORDER.index(_name(info)))
app.registered_groups.sort(key=lambda info: _ORDER.index(_name(info)))


def run() -> None:
    """The `devmsg` command (the installed script and `python -m devmsg`)."""
    _skip_unused_postgres_driver(sys.argv[1:])
    _defer_unused_rich_modules()
    _only_the_command_asked_for(sys.argv[1:])
    app(prog_name="devmsg")


def _skip_unused_postgres_driver(argv: list[str]) -> None:
    """peewee imports an installed PostgreSQL driver eagerly: 90 ms and 11 MB on every
    SQLite cron tick. A process that will only use SQLite says so before peewee looks.
    Done here, for the one command this process runs, and not in `outbox_of`: in a process
    that runs more (tests, an application) peewee would keep the driver missing."""
    if "peewee" in sys.modules or "store" in argv:
        return
    if not argv or {"--version", "--help", "-h"} & set(argv):
        return  # no store is opened: peewee is never imported, and the config not read
    explicit = None
    for index, arg in enumerate(argv):
        if arg in ("--config", "-c") and index + 1 < len(argv):
            explicit = argv[index + 1]
        elif arg.startswith("--config="):
            explicit = arg.split("=", 1)[1]
    from devmsg.config import load_config

    try:
        if load_config(explicit).database_url:
            return
    except DevmsgError:
        return  # the command itself reports it
    for driver in ("psycopg", "psycopg2"):
        sys.modules.setdefault(driver, None)  # type: ignore[arg-type]  # None: "not installed"


def _only_the_command_asked_for(argv: list[str]) -> None:
    """Typer builds every command (inspecting 24 signatures, 20-40 ms) before it runs one.
    The `devmsg` process runs one command: when the first word after the global options
    names one, only that command is built. Anything else (`--help`, no command, a typo:
    Typer's own error with its suggestions) keeps them all."""
    words = iter(argv)
    for word in words:
        if word in ("--config", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            break
    else:
        return
    commands = [c for c in app.registered_commands if _name(c) == word]
    groups = [g for g in app.registered_groups if _name(g) == word]
    if commands or groups:
        app.registered_commands, app.registered_groups = commands, groups


def _defer_unused_rich_modules() -> None:
    """Typer's help formatter imports rich.markdown (for `rich_markup_mode="markdown"`,
    which devmsg does not use) and rich.traceback (for an unexpected exception): with
    markdown-it, pygments and attrs, 60-100 ms of every `--help` and error box. In the
    `devmsg` process each is a stand-in until something uses it: the first use of
    `Markdown` or `Traceback`, or of any other name, imports the real module."""
    import importlib
    import types

    def stand_in(name: str, attribute: str) -> None:
        if name in sys.modules:
            return

        def real() -> types.ModuleType:
            if isinstance(sys.modules.get(name), Deferred):
                del sys.modules[name]
            return importlib.import_module(name)

        class Deferred(types.ModuleType):
            def __getattr__(self, item: str) -> Any:
                if item.startswith("__"):  # the import system asking (__path__, ...)
                    raise AttributeError(item)
                return getattr(real(), item)

        class Forwarding(type):
            def __getattr__(cls, item: str) -> Any:  # Traceback.from_exception(...)
                return getattr(getattr(real(), attribute), item)

        class Lazy(metaclass=Forwarding):
            def __new__(cls, *args: Any, **kwargs: Any) -> Any:
                return getattr(real(), attribute)(*args, **kwargs)

        module = Deferred(name)
        setattr(module, attribute, Lazy)
        sys.modules[name] = module

    stand_in("rich.markdown", "Markdown")
    stand_in("rich.traceback", "Traceback")


if __name__ == "__main__":  # pragma: no cover
    run()
