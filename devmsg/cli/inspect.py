"""list, show and stats: reading the store."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from devmsg.cli.base import app, console, echo, outbox_of, print_json, receiver_id
from devmsg.errors import UsageError


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="not_sent, failed, error, sent, held, cancelled, expired, suppressed, bounced "
            "or sending.",
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
    outbox = outbox_of(ctx, looking=True)
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
        print_json(rows)
        return
    if not rows:
        echo("No receivers match.")
        return
    from devmsg.views import receivers_table

    out = console()
    table = receivers_table(rows, outbox.config.tzinfo, out.width)
    if limit and len(rows) == limit:
        table.caption = f"The {limit} newest shown; --limit 0 shows all."
    out.print(table)


@app.command()
def show(
    ctx: typer.Context,
    receiver_id: Annotated[
        int, typer.Argument(metavar="ID", help="Receiver id (from list).", parser=receiver_id)
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    eml: Annotated[
        bool,
        typer.Option(
            "--eml",
            help="Write the exact stored email (what every send delivers) "
            "to stdout, as an .eml file.",
        ),
    ] = False,
) -> None:
    """Show one receiver: every field, the content, and each failure's traceback.

    Example: devmsg show 42
    """
    if eml and json_output:
        raise UsageError("give --json or --eml, not both")
    outbox = outbox_of(ctx, looking=True)
    if eml:
        data = outbox.email(receiver_id)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    row = outbox.show(receiver_id)
    if json_output:
        print_json(row)
        return
    from devmsg.views import receiver_detail

    console().print(receiver_detail(row, outbox.config.tzinfo))


@app.command()
def stats(
    ctx: typer.Context,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="type", help="Break the receivers' counts down by type."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    prometheus: Annotated[
        bool,
        typer.Option(
            "--prometheus",
            help="Print Prometheus text format (for node_exporter's textfile collector).",
        ),
    ] = False,
) -> None:
    """The queue at a glance: receivers per status, due now, oldest unsent, recent outcomes.

    Example (crontab): * * * * * devmsg stats --prometheus > /var/lib/node_exporter/devmsg.prom.$$
    && mv /var/lib/node_exporter/devmsg.prom.$$ /var/lib/node_exporter/devmsg.prom
    """
    if json_output and prometheus:
        raise UsageError("give --json or --prometheus, not both")
    outbox = outbox_of(ctx, looking=True)
    data = outbox.stats(by=by)
    if json_output:
        print_json(data)
        return
    if prometheus:
        from devmsg.cli.prometheus import prometheus_text

        sys.stdout.write(prometheus_text(data))
        return
    from devmsg.views import stats_view

    console().print(stats_view(data, outbox.config.tzinfo))
