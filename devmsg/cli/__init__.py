"""The `devmsg` command: parse, call one library function, render. The only package that prints.

Errors devmsg raises (DevmsgError) become one red line on stderr, in one place:
`DevmsgGroup.invoke`. Exit codes: 0 done; 1 an input that is there but wrong, or an error
the user can fix; 2 usage: a required input missing, or options that cannot go together
(Typer's own and devmsg's UsageError); 3 the work was stored but some receivers were not
sent.

One module per group of commands: `sending` (send, resend, resend-failed), `inspect` (list,
show, stats), `queue` (hold, release, cancel, pause, resume), `providers` (limits,
suppress), `authoring` (catalog, check, preview), `admin` (purge, demo, store). `base`
holds the app and the helpers they share.
"""

from __future__ import annotations

import sys

from devmsg.cli import admin, authoring, inspect, providers, queue, sending  # noqa: F401  (they register commands)
from devmsg.cli.base import app
from devmsg.errors import DevmsgError

__all__ = ["app", "run"]


def run() -> None:
    """The `devmsg` command (the installed script and `python -m devmsg`)."""
    _skip_unused_postgres_driver(sys.argv[1:])
    app(prog_name="devmsg")


def _skip_unused_postgres_driver(argv: list[str]) -> None:
    """peewee imports an installed PostgreSQL driver eagerly: 90 ms and 11 MB on every
    SQLite cron tick. A process that will only use SQLite says so before peewee looks.
    Done here, for the one command this process runs, and not in `_outbox`: in a process
    that runs more (tests, an application) peewee would keep the driver missing."""
    if "peewee" in sys.modules or "store" in argv:
        return
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
        sys.modules.setdefault(driver, None)


if __name__ == "__main__":  # pragma: no cover
    run()
