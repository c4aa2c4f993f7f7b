"""hold, release, cancel, pause and resume: an operator's controls over the queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from devmsg.cli.base import app, echo, outbox_of, print_json, receiver_id
from devmsg.errors import DevmsgError, UsageError

HELP = {
    "hold": (
        "Keep receivers back (not_sent or failed -> held) until they are released.",
        "devmsg hold --message 7 --reason 'wrong deadline'",
    ),
    "release": (
        "Let held receivers go again: back to not_sent, or failed and due at once.",
        "devmsg release --message 7",
    ),
    "cancel": (
        "Make sure receivers are never sent (not_sent, failed or held -> cancelled).",
        "devmsg cancel --message 7 --reason 'wrong deadline'",
    ),
}


def _command(action: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        ids: Annotated[
            list[int] | None,
            typer.Argument(metavar="[IDS]...", help="Receiver ids.", parser=receiver_id),
        ] = None,
        message: Annotated[
            int | None, typer.Option("--message", metavar="ID", help="Receivers of this message.")
        ] = None,
        type: Annotated[
            str | None, typer.Option("--type", metavar="TYPE", help="Messages of this type.")
        ] = None,
        to: Annotated[
            str | None, typer.Option("--to", metavar="ADDRESS", help="This address (any case).")
        ] = None,
        status: Annotated[
            list[str] | None,
            typer.Option("--status", "-s", metavar="STATUS", help="In this status. Repeatable."),
        ] = None,
        all_: Annotated[bool, typer.Option("--all", help="Every receiver.")] = False,
        reason: Annotated[
            str | None, typer.Option("--reason", metavar="TEXT", help="Why, for status_reason.")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Report what would change; change nothing.")
        ] = False,
        json_output: Annotated[bool, typer.Option("--json", help="Print the ids as JSON.")] = False,
    ) -> None:
        from devmsg.store import Selection

        selection = Selection(list(ids or []), message, type, to, list(status or []), all_)
        if selection.empty():
            raise UsageError(
                "choose receivers: give IDs, --message, --type, --to, --status or --all"
            )
        report = outbox_of(ctx).control(action, selection, reason, dry_run)
        if json_output:
            print_json(report.as_dict())
            return
        line = (
            f"{action}: {len(report.changed)} {'would change' if dry_run else 'changed'}, "
            f"{len(report.skipped)} skipped, {len(report.in_flight)} in flight"
        )
        echo(line + (" (may still be sent)" if report.in_flight else ""))

    summary, example = HELP[action]
    command.__doc__ = f"{summary}\n\nExample: {example}"
    command.__name__ = action
    return command


for _action in HELP:
    app.command(_action)(_command(_action))


@app.command()
def pause(
    ctx: typer.Context,
    for_: Annotated[
        str | None,
        typer.Option("--for", metavar="DURATION", help="End the pause by itself after this: 2h."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", metavar="TEXT", help="Why.")] = None,
) -> None:
    """Pause all sending, for every process and host on this store; alone, show the pause.

    Example: devmsg pause --for 2h --reason 'relay maintenance'
    """
    from devmsg.config import parse_duration

    duration = None
    if for_ is not None:
        try:
            duration = parse_duration(for_, default_unit="m")
        except ValueError as exc:
            raise DevmsgError(f"--for: {exc}") from None
    outbox = outbox_of(ctx)
    current = outbox.paused()
    if current is not None and for_ is None and reason is None:
        echo(outbox.pause_text(current))  # who paused it and since when; nothing changes
        return
    echo(outbox.pause_text(outbox.pause(duration, reason)))


@app.command()
def resume(ctx: typer.Context) -> None:
    """End a pause: sending goes on (resend-failed delivers what waited).

    Example: devmsg resume
    """
    outbox = outbox_of(ctx)
    was = outbox.resume()
    echo("sending was not paused" if was is None else f"resumed: {outbox.pause_text(was, 'was')}")
