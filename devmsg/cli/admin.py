"""purge, demo and store copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devmsg.cli.base import DevmsgGroup, app, console, echo, outbox_of, print_json, with_progress
from devmsg.words import plural


@app.command()
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="AGE",
            help="Delete receivers created longer ago than this: 90d, 12h, 30m, or days.",
        ),
    ] = None,
    orphans: Annotated[
        bool, typer.Option("--orphans", help="Only delete messages that have no receivers.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Delete old receivers and their failures, then messages left without receivers.

    Example: devmsg purge --older-than 90d --dry-run
    """
    from devmsg.inputs import parse_age

    age = parse_age(older_than) if older_than is not None else None
    outbox = outbox_of(ctx)
    report = outbox.purge(older_than=age, orphans=orphans, dry_run=dry_run)
    if json_output:
        print_json(report.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    echo(
        f"purge: {verb} {plural(report.receivers_deleted, 'receiver')} and "
        f"{plural(report.messages_deleted, 'message')}"
    )


# --- demo -----------------------------------------------------------------------------------


@app.command()
def demo(
    folder: Annotated[
        Path, typer.Option(metavar="FOLDER", help="Where to create the demo (a new folder).")
    ] = Path("devmsg-demo"),
) -> None:
    """Try devmsg with nothing configured: a local SMTP server, a store, a real send.

    Example: devmsg demo
    """
    from devmsg.demo import run_demo

    out = console()
    run_demo(folder, out.print)


# --- store ----------------------------------------------------------------------------------

store_app = typer.Typer(
    cls=DevmsgGroup,
    help="Manage the store itself: copy it between SQLite and PostgreSQL.",
    no_args_is_help=True,
)
app.add_typer(store_app, name="store")


@store_app.command("copy")
def store_copy(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="The target store: postgresql://user@host:port/dbname, sqlite:///path or a path.",
        ),
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty a non-empty target first.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Copy the whole store (messages, receivers, failures, ids) to another store.

    Example: devmsg store copy --to postgresql://devmsg@db.example:5432/devmsg
    """
    outbox = outbox_of(ctx)
    counts = with_progress(
        "Copying", lambda bar: outbox.copy_to(to, replace=replace, progress=bar), minimum=1
    )
    if json_output:
        print_json(counts)
    else:
        echo(
            f"store copy: copied {plural(counts['message'], 'message')}, "
            f"{plural(counts['receiver'], 'receiver')} "
            f"and {plural(counts['failure'], 'failure')} to {to}"
        )
