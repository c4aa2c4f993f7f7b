"""send, resend and resend-failed: the commands that deliver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer

from devmsg.cli.base import (
    EXIT_NOT_SENT,
    app,
    deliver,
    echo,
    outbox_of,
    print_json,
    receiver_id,
    summary_line,
)
from devmsg.errors import UsageError
from devmsg.words import plural

if TYPE_CHECKING:
    from devmsg.inputs import Recipient
    from devmsg.outbox import Outbox
    from devmsg.submitting import SendReport


@app.command()
def send(
    ctx: typer.Context,
    type: Annotated[
        str,
        typer.Option(
            "--type", metavar="TYPE", help="Kind of message, free text (e.g. feedback); filterable."
        ),
    ],
    template: Annotated[
        str | None,
        typer.Option(
            "--template", "-t", metavar="NAME", help="Template folder name under templates/."
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="ADDRESS",
            help="A receiver: ADDRESS or 'Name <ADDRESS>'. Repeat for more.",
        ),
    ] = None,
    receivers: Annotated[
        str | None,
        typer.Option(
            "--receivers",
            "-r",
            metavar="FILE",
            help="CSV (address,name,language) or JSON Lines (.jsonl) file of receivers; "
            "- for stdin.",
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option(
            metavar="LANG", help="Language for --to receivers and for file rows without one."
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            metavar="JSON", help="JSON object of template variables; @FILE reads a file, @- stdin."
        ),
    ] = None,
    metadata: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="JSON object stored with the message (not rendered); @FILE reads a file.",
        ),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Subject, to send without a template.")
    ] = None,
    text: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Plain-text body, without a template.")
    ] = None,
    html: Annotated[
        str | None, typer.Option(metavar="HTML", help="HTML body, without a template.")
    ] = None,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Store as not_sent and return; resend-failed delivers."),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="TIME",
            help="Send later: store as not_sent, due at TIME (ISO 8601 or +DURATION).",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="TIME",
            help="Never send after TIME (ISO 8601 or +DURATION): it becomes expired.",
        ),
    ] = None,
    attach: Annotated[
        list[str] | None,
        typer.Option(
            "--attach",
            metavar="FILE",
            help="Attach FILE to every receiver's mail. Repeat for more.",
        ),
    ] = None,
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", metavar="ADDRESS", help="A Reply-To header.")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            metavar="'NAME: VALUE'",
            help="An extra header (not one devmsg writes itself). Repeat for more.",
        ),
    ] = None,
    eml: Annotated[
        str | None,
        typer.Option(
            "--eml",
            metavar="FILE",
            help="Send a prebuilt message (RFC 5322, an .eml "
            "file; - for stdin) to its To, Cc and Bcc, or to --to.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Render a message for each receiver in their language, store it, and send it.

    Example: devmsg send --template feedback --type feedback
    --context '{"assignment": "Oblig 1"}' --to 'Ola <ola@example.com>' --language nb
    """
    from devmsg.inputs import parse_json_object, parse_recipient, read_receivers

    if eml is not None:
        _send_eml(ctx, eml, type, to, queue, at, expires, json_output, {
            "--template": template, "--receivers": receivers, "--language": language,
            "--context": context, "--subject": subject, "--text": text, "--html": html,
            "--attach": attach, "--reply-to": reply_to, "--header": header}, metadata)  # fmt: skip
        return
    if not to and not receivers:
        raise UsageError("no receivers: give --to or --receivers")
    if to and receivers:
        raise UsageError("give receivers with --to or with --receivers, not both")
    readers = [name for name, value, stdin in (("--context", context, "@-"),
               ("--metadata", metadata, "@-"), ("--receivers", receivers, "-"))
               if value == stdin]  # fmt: skip
    if len(readers) > 1:
        raise UsageError(f"{' and '.join(readers)} cannot both read stdin")
    context_value = parse_json_object(context, "--context")
    metadata_value = parse_json_object(metadata, "--metadata")
    recipients: Iterable[Recipient]
    if to:
        recipients = [parse_recipient(item, language, where=f"--to {item!r}") for item in to]
    else:
        recipients = read_receivers(receivers or "-", language)  # one of them is given
    outbox = outbox_of(ctx)
    from devmsg.inputs import parse_time

    tz = outbox.config.tzinfo
    send_at = None if at is None else parse_time(at, "--at", tz)
    expires_at = None if expires is None else parse_time(expires, "--expires", tz)
    report = deliver(
        "Sending",
        lambda bar: outbox.send(
            type=type,
            template=template,
            context=context_value,
            metadata=metadata_value,
            recipients=recipients,
            language=language,
            subject=subject,
            text=text,
            html=html,
            queue=queue,
            send_at=send_at,
            expires_at=expires_at,
            attachments=attach,
            reply_to=reply_to,
            headers=_headers(header or []),
            progress=bar,
        ),
    )
    _report_send(outbox, report, send_at, json_output)


def _headers(lines: list[str]) -> dict[str, str]:
    from devmsg.headers import parse_header_line

    headers: dict[str, str] = {}
    for line in lines:
        name, value = parse_header_line(line, f"--header {line!r}")
        if name.lower() in (n.lower() for n in headers):
            raise UsageError(f"--header {name}: given twice")
        headers[name] = value
    return headers


def _send_eml(
    ctx: typer.Context, eml: str, type: str, to: list[str] | None, queue: bool, at: str | None,
    expires: str | None, json_output: bool, others: dict, metadata: str | None,
) -> None:  # fmt: skip
    """send --eml: a prebuilt message, stored and sent as given (see Outbox.send_email)."""
    import sys

    from devmsg.inputs import parse_json_object, parse_recipient, parse_time

    given = [option for option, value in others.items() if value]
    if given:
        raise UsageError(f"--eml sends the message as given: {', '.join(given)} cannot go with it")
    if eml == "-" and metadata == "@-":
        raise UsageError("--eml and --metadata cannot both read stdin")
    metadata_value = parse_json_object(metadata, "--metadata")
    if eml == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(eml, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise UsageError(f"--eml {eml}: cannot read: {exc.strerror}") from None
    recipients = None
    if to:
        recipients = [parse_recipient(item, None, where=f"--to {item!r}") for item in to]
    outbox = outbox_of(ctx)
    tz = outbox.config.tzinfo
    send_at = None if at is None else parse_time(at, "--at", tz)
    expires_at = None if expires is None else parse_time(expires, "--expires", tz)
    report = deliver(
        "Sending",
        lambda bar: outbox.send_email(data, type=type, recipients=recipients, queue=queue,
                                      metadata=metadata_value,
                                      send_at=send_at, expires_at=expires_at, progress=bar),
    )  # fmt: skip
    _report_send(outbox, report, send_at, json_output)


def _report_send(
    outbox: Outbox, report: SendReport, send_at: dt.datetime | None, json_output: bool
) -> None:
    if not json_output:
        for asked, (used, count) in sorted(report.fallbacks.items()):
            echo(f"{plural(count, 'receiver')} asked for {asked}: sent in {used}")
    if report.duplicates and not json_output:
        merged = plural(report.duplicates, "duplicate receiver")
        echo(f"{merged} merged: one mail per mailbox", err=True)
    # Suppressed receivers are stored but never delivered: not counted as queued or left.
    waiting = len(report.receiver_ids) - report.suppressed
    also = f"; {report.suppressed} suppressed (see devmsg suppress list)" * bool(report.suppressed)
    if json_output:
        print_json(report.as_dict())
    elif report.queued and send_at is not None and report.pause is None:
        when = outbox.config.minute(send_at)
        echo(
            f"message {report.message_id}: {plural(waiting, 'receiver')} due at {when} "
            f"(devmsg worker or resend-failed delivers them then){also}"
        )
    elif report.queued:
        echo(
            f"message {report.message_id}: queued {plural(waiting, 'receiver')} "
            f"(devmsg worker or resend-failed delivers them){also}"
        )
        if report.pause is not None:
            echo(f"Not sent now: {outbox.pause_text(report.pause)}", err=True)
    else:
        echo(summary_line(report, f"message {report.message_id}"))
        if report.pause is not None:
            left = waiting - report.attempted
            left_text = plural(left, "receiver")
            echo(f"Stopped: {outbox.pause_text(report.pause)}; {left_text} left for "
                  "devmsg resend-failed", err=True)  # fmt: skip
        if not report.ok:
            echo(
                f"Not sent: see devmsg list --message {report.message_id} "
                "--status failed --status error",
                err=True,
            )
    if not report.ok:
        raise typer.Exit(EXIT_NOT_SENT)


@app.command()
def resend(
    ctx: typer.Context,
    receiver_ids: Annotated[
        list[int],
        typer.Argument(metavar="ID...", help="Receiver ids to send again.", parser=receiver_id),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Send even while sending is paused.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Send the chosen receivers again, whatever their status.

    Example: devmsg resend 41 42
    """
    outbox = outbox_of(ctx)
    report = deliver(
        "Resending", lambda bar: outbox.resend(receiver_ids, progress=bar, force=force)
    )
    if json_output:
        print_json(report.as_dict())
    else:
        echo(summary_line(report, "resend"))
    if not report.ok:
        raise typer.Exit(EXIT_NOT_SENT)


@app.command("resend-failed")
def resend_failed(
    ctx: typer.Context,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print nothing unless something failed (for cron)."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Deliver everything due: failed past its backoff, queued, stranded (run it from cron).

    Example (crontab): */10 * * * * devmsg --config /srv/app/devmsg.toml resend-failed --quiet
    """
    outbox = outbox_of(ctx)
    report = deliver("Resending", lambda bar: outbox.resend_failed(progress=bar))
    if json_output:
        print_json(report.as_dict())
    elif report.pause is not None and not report.attempted:
        if not quiet:
            echo(outbox.pause_text(report.pause))
    elif not quiet or not report.ok:
        echo(summary_line(report, "resend-failed"))
        if report.pause is not None:
            echo(f"Stopped: {outbox.pause_text(report.pause)}", err=True)
