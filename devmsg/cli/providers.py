"""limits and suppress: being a good citizen toward mail providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from devmsg.cli.base import DevmsgGroup, app, console, echo, outbox_of, print_json
from devmsg.words import plural


@app.command()
def limits(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Show each rate limit: its use in the current window and when the next permit frees.

    The limits are shared by every devmsg process and host on this store.

    Example: devmsg limits
    """
    from devmsg.config import load_config
    from devmsg.views import limits_table

    config = load_config(ctx.obj["config"])
    # With no limits configured there is nothing to look up: no store is needed.
    rows = outbox_of(ctx, looking=True, config=config).limits() if config.rate_limits else []
    _show(rows, json_output, "No rate limits configured ([rate_limits] in devmsg.toml).",
          lambda rows: limits_table(rows, config.tzinfo))  # fmt: skip


def _show(rows: list[dict], json_output: bool, empty: str, table: Callable[..., Any]) -> None:
    """A list as JSON, or a line saying it is empty, or its table."""
    if json_output:
        print_json(rows)
    elif not rows:
        echo(empty)
    else:
        console().print(table(rows))


suppress_app = typer.Typer(
    cls=DevmsgGroup,
    help="The suppression list: addresses devmsg does not try again.",
    no_args_is_help=True,
)
app.add_typer(suppress_app, name="suppress")

_ADDRESSES = Annotated[list[str], typer.Argument(metavar="ADDRESS...", help="Email addresses.")]


@suppress_app.command("list")
def suppress_list(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the suppressed addresses, newest first: since when, why, which receiver.

    Example: devmsg suppress list
    """
    from devmsg.views import suppressions_table

    outbox = outbox_of(ctx, looking=True)
    tz = outbox.config.tzinfo
    _show(outbox.suppressions(), json_output, "The suppression list is empty.",
          lambda rows: suppressions_table(rows, tz))  # fmt: skip


@suppress_app.command("add")
def suppress_add(
    ctx: typer.Context,
    addresses: _ADDRESSES,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why, shown in the list.")
    ] = None,
) -> None:
    """Put addresses on the suppression list: receivers to them are stored, not tried.

    Example: devmsg suppress add ola@example.no --reason 'asked us to stop'
    """
    added, kept = outbox_of(ctx).suppress(addresses, reason)
    echo(
        f"suppress: added {plural(added, 'address')}" + (f", {kept} already listed" if kept else "")
    )


@suppress_app.command("remove")
def suppress_remove(
    ctx: typer.Context,
    addresses: _ADDRESSES,
    requeue: Annotated[
        bool,
        typer.Option("--requeue", help="Their suppressed receivers become not_sent, due at once."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also remove addresses listed by a complaint (spam report)."),
    ] = False,
) -> None:
    """Take addresses off the suppression list (each must be on it).

    An address listed by a complaint (its reader reported the mail as spam) needs --force.

    Example: devmsg suppress remove ola@example.no --requeue
    """
    removed, requeued = outbox_of(ctx).unsuppress(addresses, requeue, force)
    text = f"suppress: removed {plural(removed, 'address')}"
    if requeue:
        text += f"; {plural(requeued, 'receiver')} requeued "
        text += "(devmsg worker or resend-failed delivers them)"
    echo(text)
