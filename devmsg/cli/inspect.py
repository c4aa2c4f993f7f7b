"""list and show: reading the store."""

from __future__ import annotations

from typing import Annotated

import typer

from devmsg.cli.base import _console, _echo, _outbox, _print_json, app


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="not_sent, failed, error or sent. Repeat for more.",
        ),
    ] = None,
    type: Annotated[
        str | None, typer.Option("--type", metavar="TYPE", help="Only this message type.")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="ADDRESS", help="Only this address (exact, ignoring case)."),
    ] = None,
    message: Annotated[
        int | None, typer.Option("--message", metavar="ID", help="Only this message id.")
    ] = None,
    sent_since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Sent at or after this ISO date or time (configured time zone)."
        ),
    ] = None,
    sent_until: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Sent at or before this ISO date (the whole day) or time."
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="How many, newest first; 0 for all.")
    ] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List receivers, newest first, in a table.

    Example: devmsg list --status failed --status error --type feedback --limit 20
    """
    outbox = _outbox(ctx)
    rows = outbox.list(
        statuses=status,
        type=type,
        to=to,
        message=message,
        sent_since=sent_since,
        sent_until=sent_until,
        limit=limit,
    )
    if json_output:
        _print_json(rows)
        return
    if not rows:
        _echo("No receivers match.")
        return
    from devmsg.views import receivers_table

    table = receivers_table(rows, outbox.config.tzinfo)
    if limit and len(rows) == limit:
        table.caption = f"The {limit} newest shown; --limit 0 shows all."
    _console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    receiver_id: Annotated[int, typer.Argument(metavar="ID", help="Receiver id (from list).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show one receiver: every field, the content, and each failure's traceback.

    Example: devmsg show 42
    """
    outbox = _outbox(ctx)
    row = outbox.show(receiver_id)
    if json_output:
        _print_json(row)
        return
    from devmsg.views import receiver_detail

    _console().print(receiver_detail(row, outbox.config.tzinfo))
